#!/usr/bin/env bash
# Stop the test sshd started by setup.sh. Users, keys and sudoers rules stay:
# they are harmless, and keeping them makes the next setup.sh fast.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${SVC_TEST_STATE:-$REPO/.state}"
PIDFILE="$STATE/sshd.pid"

# Container targets (tests/env/containers.sh): their containers and dockerd.
CONTAINERS="$STATE/containers"
if command -v podman >/dev/null; then
    podman rm -f -t 0 svc-test-podman >/dev/null 2>&1 || true
fi
if [ -S "$CONTAINERS/docker.sock" ]; then
    docker -H "unix://$CONTAINERS/docker.sock" rm -f svc-test-docker >/dev/null 2>&1 || true
fi
if [ -f "$CONTAINERS/dockerd.pid" ]; then
    kill "$(cat "$CONTAINERS/dockerd.pid")" 2>/dev/null && echo "teardown.sh: stopped dockerd" >&2 || true
    rm -f "$CONTAINERS/dockerd.pid"
fi
rm -f "$CONTAINERS/env.json"

if [ ! -f "$PIDFILE" ]; then
    echo "teardown.sh: no $PIDFILE; nothing to stop" >&2
    exit 0
fi
pid="$(cat "$PIDFILE")"
# Same test as setup.sh: a stale pidfile may name a recycled pid, and a killed
# sshd may linger as a zombie until init reaps it.
is_live_sshd() {
    local comm state
    [ -n "$1" ] && read -r _ comm state _ 2>/dev/null <"/proc/$1/stat" || return 1
    [ "$comm" = "(sshd)" ] && [ "$state" != Z ] && [ "$state" != X ]
}
if is_live_sshd "$pid"; then
    kill "$pid"
    for _ in $(seq 50); do is_live_sshd "$pid" || break; sleep 0.1; done
    if is_live_sshd "$pid"; then
        kill -9 "$pid"
    fi
    echo "teardown.sh: stopped sshd $pid" >&2
else
    echo "teardown.sh: sshd $pid is not running" >&2
fi
rm -f "$PIDFILE"
