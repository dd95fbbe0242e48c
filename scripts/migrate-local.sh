#!/usr/bin/env bash
# The main job on the embedded default: install what is needed, then migrate the demo app
# (var/demo/bot.db, generated if absent) to the PostgreSQL installed on this machine.
# Extra arguments go to ansible-playbook (e.g. --check, --tags preflight).
set -euo pipefail
cd "$(dirname "$0")/.."
BOOTSTRAP_PODMAN=0 ./scripts/bootstrap.sh
exec .venv/bin/ansible-playbook playbooks/migrate.yml "$@"
