#!/usr/bin/env bash
# Build the systemd-capable Debian base images that Molecule runs the role on:
#   localhost/s2p-debian:12  (bookworm, PostgreSQL 15)
#   localhost/s2p-debian:13  (trixie,   PostgreSQL 17)
# No registry is reachable from these machines, so each image is a debootstrap rootfs
# imported into podman (see ../shared/notes/test-hosts.md). An image that already exists
# is kept; FORCE=1 rebuilds. PostgreSQL itself is NOT in the image: the role installs it.
set -euo pipefail

declare -A suites=([12]=bookworm [13]=trixie)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3-apt: Ansible's apt module needs it (it would otherwise install it on every
# fresh container); ca-certificates and locales keep apt and initdb quiet.
include=python3,python3-apt,systemd,systemd-sysv,dbus,iproute2,sudo,ca-certificates

SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

build() {
  local tag=$1 suite=$2 image="localhost/s2p-debian:$1"
  if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then
    echo "build-test-images: $image exists, skipped"
    return
  fi
  local rootfs
  rootfs=$(mktemp -d "/var/tmp/s2p-rootfs-$suite.XXXXXX")
  # shellcheck disable=SC2064
  trap "$SUDO rm -rf '$rootfs'" RETURN
  echo "build-test-images: debootstrap $suite -> $image"
  local start=$SECONDS
  $SUDO debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >/dev/null
  # A UTF-8 default locale (C.UTF-8 ships with libc, no locales package needed), so the
  # packaged cluster is created with UTF8 encoding; no apt caches in the image.
  echo 'LANG=C.UTF-8' | $SUDO tee "$rootfs/etc/default/locale" "$rootfs/etc/locale.conf" >/dev/null
  # Mark the emptied apt lists as stale so `apt: cache_valid_time` refreshes them.
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  $SUDO touch -d @0 "$rootfs/var/lib/apt/lists"
  $SUDO tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' - "$image" >/dev/null
  echo "build-test-images: $image built in $((SECONDS - start)) s"
}

# Both suites in parallel (each is mostly download time); fail if either fails.
pids=()
for tag in 12 13; do
  build "$tag" "${suites[$tag]}" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
[ "$rc" = 0 ] || { echo "build-test-images: a build failed" >&2; exit 1; }
podman image ls --filter reference='localhost/s2p-debian' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
