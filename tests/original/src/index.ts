export type {
  SessionMetadata,
  SessionStore,
  SessionManagerOptions,
  SessionManagerEvents,
} from "./types.ts";

export { SessionManager } from "./session-manager.ts";
export { FileSessionStore } from "./file-session-store.ts";
export { InMemorySessionStore } from "./in-memory-session-store.ts";
export {
  DrizzleSessionStore,
  type DrizzleSessionAdapter,
  type DrizzleSessionRow,
} from "./drizzle-session-store.ts";
