#!/usr/bin/env bash
# Build the offline base image for the sandbox: a minimal Debian bookworm rootfs with
# python3, made by debootstrap from this machine's own apt mirror and `docker import`ed.
#
# Why: the Dockerfile's default base (python:3.12-slim) needs a container registry; on
# machines that only reach a Debian mirror this gives the same thing (a small Debian
# with a Python 3 interpreter) without one. `collapse-bench sandbox build` calls this
# script when no registry base is available.
#
# Usage: scripts/build_base_image.sh [TAG]   (default collapse-bench-base:bookworm)
# Needs: root (debootstrap), a running Docker engine. Exit 3 when something is missing.
set -euo pipefail

TAG="${1:-collapse-bench-base:bookworm}"
SUITE="bookworm"

die() { echo "build_base_image: $*" >&2; exit 3; }

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root; run as root (e.g. sudo $0) or build the Dockerfile with a registry base: docker build -t collapse-bench-sandbox:latest ."
docker info >/dev/null 2>&1 || die "no Docker engine answers; run 'bash scripts/ensure_docker.sh' first"

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "build_base_image: installing debootstrap" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q debootstrap >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; } \
        || die "could not install debootstrap (apt-get install -y debootstrap)"
fi

# The mirror: the first non-security Debian URI in the deb822 sources, else the first
# `deb` line of sources.list, else Debian's default mirror.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
        /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
        /etc/apt/sources.list)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs=$(mktemp -d /var/tmp/collapse-bench-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "build_base_image: debootstrap --variant=minbase --include=python3 $SUITE from $mirror" >&2
debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; die "debootstrap failed (mirror $mirror)"; }
rm -f "$rootfs.log"

# Nothing at run time needs apt, documentation or translations: drop them.
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
       "$rootfs"/var/log/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
find "$rootfs" -name '__pycache__' -type d -prune -exec rm -rf {} +

echo "build_base_image: importing as $TAG" >&2
tar -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
    | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$TAG" >/dev/null
echo "build_base_image: built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG") bytes)" >&2
