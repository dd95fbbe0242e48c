#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian 12/13 machine:
# apt packages (PostgreSQL server for tests and the local default, podman for Molecule),
# a virtual environment in .venv with the Python stack, and the podman settings that
# these sandboxed hosts need (see docs/test-hosts.md). Safe to rerun: each step is skipped
# when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

want_podman=${BOOTSTRAP_PODMAN:-1}

apt_packages=(postgresql postgresql-client sqlite3 python3-venv acl procps)   # procps: ps, for the test app's stop command
[ "$want_podman" = 1 ] && apt_packages+=(podman runc debootstrap)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Podman in this sandbox: crun refuses hybrid cgroups and default ulimits exceed the hard limits.
if [ "$want_podman" = 1 ] && ! grep -qs 'cgroup_manager = "cgroupfs"' /etc/containers/containers.conf; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO mkdir -p /etc/containers
  $SUDO tee /etc/containers/containers.conf >/dev/null <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
fi

# Python environment. The pyenv shim python3 may point at a version without venv support:
# prefer the interpreter that runs this script's `python3`.
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi
echo "bootstrap: ready (.venv, PostgreSQL $(ls /usr/lib/postgresql | sort -V | tail -1))"
