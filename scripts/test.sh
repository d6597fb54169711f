#!/usr/bin/env bash
# The whole test suite: installs what it needs, then lint, types, import contracts, Vagrantfile, and every
# test tier (unit, simulation, shell, integration) as root. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

echo "== ruff" >&2
.venv/bin/ruff check p2porch tests bench
echo "== mypy" >&2
.venv/bin/mypy
echo "== import-linter (the package graph of docs/architecture.md)" >&2
.venv/bin/lint-imports --no-cache
echo "== vagrant validate" >&2
(cd vagrant && vagrant validate)
echo "== pytest (all tiers)" >&2
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=40 tests "$@"
