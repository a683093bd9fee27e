#!/usr/bin/env bash
# The release artifacts, into dist/ (emptied first):
#   - the sdist, with the tests and examples in it;
#   - the abi3 wheel for Linux x86_64, manylinux2014 (glibc 2.17), linked by zig against that
#     glibc, whatever this machine's is;
#   - the pure-Python py3-none-any wheel of the same version, built from the sdist the way a
#     user without Rust builds it (SIMULACRA_SESSION_BUILD=pure, see build_backend/), so both
#     wheels carry the sdist's metadata.
# Then checks them: auditwheel on the native wheel, twine check --strict on all three.
#
#   bash scripts/build-dist.sh
#
# Its tools (maturin, ziglang, auditwheel, twine) go into a virtual environment of their own,
# target/dist-tools, made with $PYTHON (default python3). Prints the artifacts' paths last.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
TOOLS=target/dist-tools
step() { printf '\n==> build-dist: %s\n' "$*"; }
die() {
    printf 'build-dist: error: %s\n' "$*" >&2
    exit 1
}
export MATURIN_NO_MISSING_BUILD_BACKEND_WARNING=1 # build_backend/ hands maturin the build on purpose

step "tools in $TOOLS"
[ -x "$TOOLS/bin/python" ] || "$PY" -m venv "$TOOLS"
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check \
    "maturin>=1.9.4,<2" "ziglang>=0.11" "auditwheel>=6.1" "twine>=6.1"
export PATH="$PWD/$TOOLS/bin:$PATH" # maturin finds zig as `python3 -m ziglang`

rm -rf dist
mkdir -p dist

step "sdist"
maturin sdist --out dist
sdist="$(echo dist/*.tar.gz)"
[ -f "$sdist" ] || die "no sdist in dist/"
listing="$(tar -tzf "$sdist")"
for member in LICENSE tests/conftest.py tests/fixtures build_backend/simulacra_build.py examples/demo.py; do
    grep -q "^[^/]*/$member" <<<"$listing" || die "$sdist lacks $member"
done

step "abi3 wheel, manylinux2014 x86_64 (zig)"
maturin build --release --locked --zig --compatibility manylinux2014 \
    --target x86_64-unknown-linux-gnu --out dist
native="$(echo dist/*-abi3-*.whl)"
[ -f "$native" ] || die "no abi3 wheel in dist/"
audit="$(auditwheel show "$native")"
printf '%s\n' "$audit"
# its verdict, "... is consistent with the following platform tag: "manylinux_2_17_x86_64"", may wrap
glibc="$(tr -s '\n' ' ' <<<"$audit" | grep -o 'platform tag: *"manylinux_2_[0-9]*' | grep -o '[0-9]*$' || true)"
[ -n "$glibc" ] && [ "$glibc" -le 17 ] ||
    die "$native needs a newer glibc than 2.17 (auditwheel: manylinux_2_${glibc:-?})"

step "pure-Python wheel, from the sdist"
SIMULACRA_SESSION_BUILD=pure python3 -m pip wheel -q --disable-pip-version-check \
    --no-deps --wheel-dir dist "$sdist"
pure="$(echo dist/*-py3-none-any.whl)"
[ -f "$pure" ] || die "no py3-none-any wheel in dist/"
version="${native#dist/simulacra_session-}"
version="${version%%-*}"
[ "$pure" = "dist/simulacra_session-$version-py3-none-any.whl" ] || die "$pure is not version $version"
[ "$sdist" = "dist/simulacra_session-$version.tar.gz" ] || die "$sdist is not version $version"

step "twine check --strict"
twine check --strict dist/*

step "artifacts (version $version)"
ls -l dist
