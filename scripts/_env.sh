# Shared by scripts/run and scripts/test: find Python 3.11+, create .venv, install the project
# (again only when pyproject.toml changed). Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Otomat needs Python 3.11 or newer; none was found on PATH." >&2
  return 1
}

ensure_venv() {  # $1: pip extras, e.g. "" or "[test]"
  local extras="${1:-}"
  if [ ! -x .venv/bin/python ]; then
    local py; py="$(find_python)"
    echo "[setup] creating .venv with $py" >&2
    "$py" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
  fi
  local stamp=".venv/.otomat-installed${extras}"
  local want; want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing Otomat${extras} into .venv (first run takes a minute)" >&2
    .venv/bin/python -m pip install --quiet -e ".${extras}" >&2
    echo "$want" > "$stamp"
  fi
}
