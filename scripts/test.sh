#!/usr/bin/env bash
# Every test, on a fresh clone: Rust (fmt, clippy, cargo test), the built wheel, lint and
# types (ruff, mypy --strict, stubtest), then the whole Python suite twice, once on the
# compiled extension and once on the pure-Python twin (SIMULACRA_SESSION_PURE=1), and
# last the benchmarks once each, untimed, so they cannot rot between measured runs.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
step() { printf '\n==> %s\n' "$*"; }

step "Python tools"
"$PY" -m pip install -q --disable-pip-version-check \
    "maturin>=1.7,<2" "pytest>=8.4" "pytest-asyncio>=1.0" "pytest-timeout>=2" "hypothesis>=6" \
    "ruff>=0.6" "mypy>=1.11" "pydantic>=2.6,<3" \
    "sqlalchemy[asyncio]>=2.0" "psycopg[binary]>=3.1" "pymysql>=1.1" "aiosqlite>=0.20" "asyncpg>=0.29" \
    "pytest-benchmark>=4" "orjson>=3" "openai-agents>=0.2" "langgraph-checkpoint-sqlite>=2"

step "Rust: fmt, clippy, cargo test"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked

step "Build the wheel and install it"
rm -rf dist
"$PY" -m maturin build --release --locked --out dist
"$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps dist/*.whl
(cd /tmp && "$PY" -c "import simulacra_session as s; assert s.BACKEND == 'native', s.BACKEND; print('backend:', s.BACKEND)")

step "Lint and types"
"$PY" -m ruff check python tests benches examples
"$PY" -m ruff format --check python tests benches examples
"$PY" -m mypy --strict python/simulacra_session
(cd /tmp && "$PY" -m mypy.stubtest simulacra_session._native)

step "pytest: native backend"
"$PY" -m pytest -p no:cacheprovider "$@"

step "pytest: pure-Python backend"
SIMULACRA_SESSION_PURE=1 "$PY" -m pytest -p no:cacheprovider "$@"

step "Benchmarks, each run once untimed (their checks on what was stored still run)"
"$PY" -m pytest -p no:cacheprovider benches --benchmark-disable -q
