#!/usr/bin/env bash
# Make sure a Docker engine answers, because every program the benchmark runs goes
# through the Docker sandbox.
#
# - `docker info` works: nothing to do.
# - We are root: install docker.io from Debian's packages when it is missing, start
#   dockerd in the background when it is not running, and wait until it answers.
# - Otherwise: print what to do and exit 3 (the project's "environment problem" code).
set -euo pipefail

WAIT_S="${DOCKER_WAIT_S:-60}"
LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"

say() { echo "ensure_docker: $*" >&2; }
die() { say "$*"; exit 3; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    say "Docker engine is running ($(docker info -f '{{.ServerVersion}}' 2>/dev/null))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v docker >/dev/null 2>&1 && docker info 2>&1 | grep -qi 'permission denied'; then
        die "permission denied on the Docker socket: add yourself to the docker group (sudo usermod -aG docker \$USER, then log in again) or run as root"
    fi
    die "no Docker engine answers and we are not root: install and start Docker (Debian: sudo apt-get install -y docker.io && sudo systemctl start docker), or run 'sudo bash scripts/ensure_docker.sh'"
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    say "installing docker.io from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q docker.io >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q docker.io >/dev/null; } \
        || die "could not install docker.io (apt-get install -y docker.io failed)"
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd in the background (log: $LOG)"
    # setsid + nohup: the daemon must outlive the make/shell that started it.
    setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$WAIT_S"); do
    if docker info >/dev/null 2>&1; then
        say "Docker engine is running ($(docker info -f '{{.ServerVersion}}' 2>/dev/null))"
        exit 0
    fi
    sleep 1
done
tail -n 20 "$LOG" >&2 2>/dev/null || true
die "dockerd did not answer within ${WAIT_S}s; see $LOG"
