#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, lint, unit and integration
# tests against a real PostgreSQL, then the Molecule scenarios on podman systemd hosts.
# Set SKIP_MOLECULE=1 for a quick local loop (CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
start=$(date +%s)

echo "== ruff"
ruff check .
echo "== ansible-lint (production profile)"
ansible-lint --offline -q
echo "== pytest (unit + integration against a throwaway PostgreSQL)"
pytest -q
if [ "${SKIP_MOLECULE:-0}" != 1 ]; then
  ./scripts/build-test-images.sh
  for scenario in molecule/*/; do
    s=$(basename "$scenario")
    echo "== molecule test -s $s"
    molecule test -s "$s"
  done
fi
echo "== suite wall time: $(( $(date +%s) - start )) s"
