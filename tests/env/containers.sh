#!/usr/bin/env bash
# Container targets for tests/integration/test_containers.py: a podman and a
# docker container and a chroot, all from one Debian root built here with
# debootstrap (no image registry needed), plus the vanilla connection plugins
# they are compared with (containers.podman, community.docker and
# community.general's chroot, taken from the `ansible` package on PyPI).
#
# Idempotent: the root, the images, the plugins and running containers are
# kept in $STATE/containers and reused. Called by setup.sh; writes
# $STATE/containers/env.json, which the tests read (no file: they skip).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${SVC_TEST_STATE:-$REPO/.state}"
DIR="$STATE/containers"
PODMAN_CONTAINER=svc-test-podman
DOCKER_CONTAINER=svc-test-docker
DOCKER_SOCK="$DIR/docker.sock"
# Any Python with pip will do to fetch the plugins; the project's own first.
PYTHON="$REPO/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3

log() { echo "containers.sh: $*" >&2; }
die() { echo "containers.sh: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
mkdir -p "$DIR"
rm -f "$DIR/env.json"

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the root file system -----------------------------------------------------
# Debian minbase with Python, from the mirror this machine's apt uses.
ROOTFS="$DIR/rootfs.tar"
if [ ! -s "$ROOTFS" ]; then
    suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {print $2; exit}' || true)"
    [ -n "$mirror" ] || mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2; exit}' || true)"
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt"
    log "building a $suite root with debootstrap from $mirror"
    rm -rf "$DIR/root.tmp"
    debootstrap --variant=minbase --include=python3 "$suite" "$DIR/root.tmp" "$mirror" >"$DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $DIR/debootstrap.log"
    # A marker the tests look for (a task really ran inside), and an account
    # with a shell to become.
    echo "svc-test-root" >"$DIR/root.tmp/etc/svc-test-root"
    chroot "$DIR/root.tmp" useradd --create-home --shell /bin/sh svc-ctr
    tar -C "$DIR/root.tmp" -cf "$ROOTFS.tmp" .
    mv "$ROOTFS.tmp" "$ROOTFS"
    rm -rf "$DIR/root.tmp"
fi

# Images are named after the root they hold: a rebuilt root is imported anew.
IMAGE="localhost/svc-test:$(sha256sum "$ROOTFS" | cut -c1-12)"

# --- chroot -------------------------------------------------------------------
CHROOT="$DIR/chroot"
if [ ! -x "$CHROOT/usr/bin/python3" ]; then
    log "unpacking the chroot"
    rm -rf "$CHROOT" && mkdir -p "$CHROOT"
    tar -C "$CHROOT" -xf "$ROOTFS"
fi

# --- podman -------------------------------------------------------------------
# runc, not crun (crun refuses hybrid cgroups), and limits at or below this
# machine's hard limits (raising them needs CAP_SYS_RESOURCE).
podman image exists "$IMAGE" || podman import -q "$ROOTFS" "$IMAGE" >/dev/null
if [ "$(podman inspect -f '{{.State.Running}} {{.ImageName}}' "$PODMAN_CONTAINER" 2>/dev/null)" != "true $IMAGE" ]; then
    podman rm -f "$PODMAN_CONTAINER" >/dev/null 2>&1 || true
    log "starting podman container $PODMAN_CONTAINER"
    podman --runtime runc run -d --name "$PODMAN_CONTAINER" --network none \
        --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$IMAGE" sleep infinity >/dev/null
fi

# --- docker -------------------------------------------------------------------
# A dockerd of our own (socket and data under $DIR), without networking.
DOCKER=(docker -H "unix://$DOCKER_SOCK")
if ! "${DOCKER[@]}" info >/dev/null 2>&1; then
    log "starting dockerd on $DOCKER_SOCK"
    setsid dockerd --data-root "$DIR/docker-data" --exec-root "$DIR/docker-exec" --pidfile "$DIR/dockerd.pid" \
        -H "unix://$DOCKER_SOCK" --iptables=false --ip6tables=false --bridge=none \
        >"$DIR/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 100); do "${DOCKER[@]}" info >/dev/null 2>&1 && break; sleep 0.2; done
    "${DOCKER[@]}" info >/dev/null 2>&1 || die "dockerd did not start; see $DIR/dockerd.log"
fi
"${DOCKER[@]}" image inspect "$IMAGE" >/dev/null 2>&1 || "${DOCKER[@]}" import "$ROOTFS" "$IMAGE" >/dev/null
if [ "$("${DOCKER[@]}" inspect -f '{{.State.Running}} {{.Config.Image}}' "$DOCKER_CONTAINER" 2>/dev/null)" != "true $IMAGE" ]; then
    "${DOCKER[@]}" rm -f "$DOCKER_CONTAINER" >/dev/null 2>&1 || true
    log "starting docker container $DOCKER_CONTAINER"
    "${DOCKER[@]}" run -d --name "$DOCKER_CONTAINER" --network none "$IMAGE" sleep infinity >/dev/null
fi

# --- the vanilla plugins ------------------------------------------------------
COLLECTIONS="$DIR/collections"
if [ ! -f "$COLLECTIONS/.complete" ]; then
    log "taking the container connection plugins from the ansible package"
    rm -rf "$COLLECTIONS" "$DIR/wheel" && mkdir -p "$COLLECTIONS" "$DIR/wheel"
    "$PYTHON" -m pip download -q --no-deps -d "$DIR/wheel" ansible >/dev/null
    "$PYTHON" - "$DIR"/wheel/ansible-*.whl "$COLLECTIONS" <<'EOF'
import sys
import zipfile

wheel, dest = sys.argv[1:]
keep = ("ansible_collections/containers/podman/", "ansible_collections/community/docker/",
        "ansible_collections/community/general/plugins/connection/chroot.py")
with zipfile.ZipFile(wheel) as zf:
    zf.extractall(dest, [n for n in zf.namelist() if n.startswith(keep)])
EOF
    rm -rf "$DIR/wheel"
    touch "$COLLECTIONS/.complete"
fi

cat >"$DIR/env.json" <<EOF
{
  "podman": "$PODMAN_CONTAINER",
  "docker": "$DOCKER_CONTAINER",
  "docker_host": "unix://$DOCKER_SOCK",
  "chroot": "$CHROOT",
  "collections": "$COLLECTIONS"
}
EOF
log "ok: podman $PODMAN_CONTAINER, docker $DOCKER_CONTAINER, chroot $CHROOT"
