#!/usr/bin/env bash
# The live market monitor.
#   ./run.sh            start the dashboard at http://localhost:8501 (creates .venv on first use)
#   ./run.sh test       lint, then the whole test suite (extra arguments go to pytest)
#   ./run.sh lint       ruff check, ruff format --check and mypy --strict on market/ and app/
#   ./run.sh watch ...  the headless CLI: python -m market watch ...
#   ./run.sh --help     this text
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"
STAMP="$VENV/.requirements.sha256"

usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; }

lint() {
    "$VENV/bin/ruff" check market app
    "$VENV/bin/ruff" format --check market app
    "$VENV/bin/mypy" --strict market app
}

ensure_venv() {
    local want
    want=$(sha256sum requirements.txt | cut -d' ' -f1)
    if [[ ! -x "$PY" ]]; then
        echo "run.sh: creating $VENV (first run; takes a minute)" >&2
        python3 -m venv "$VENV"
    fi
    if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
        echo "run.sh: installing requirements.txt into $VENV" >&2
        "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
        echo "$want" > "$STAMP"
    fi
}

case "${1:-}" in
    -h|--help|help)
        usage
        ;;
    test)
        shift
        ensure_venv
        lint
        exec "$PY" -m pytest "$@"
        ;;
    lint)
        ensure_venv
        lint
        ;;
    watch)
        shift
        ensure_venv
        exec "$PY" -m market watch "$@"
        ;;
    ""|app)
        [[ $# -gt 0 ]] && shift
        ensure_venv
        exec "$PY" -m streamlit run app/main.py "$@"
        ;;
    *)
        echo "run.sh: unknown command '$1' (try ./run.sh --help)" >&2
        exit 2
        ;;
esac
