#!/usr/bin/env bash
# Build the local ssh test environment used by tests/integration.
#
# Creates three plain accounts, a private sshd on 127.0.0.1:$SVC_TEST_SSH_PORT
# and a client key, then proves that ssh + sudo work. Idempotent: every step
# checks before it changes anything, so a second run only re-verifies (< 1 s).
# See tests/env/README.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${SVC_TEST_STATE:-$REPO/.state}"
PORT="${SVC_TEST_SSH_PORT:-2222}"
HOST=127.0.0.1
PW_PASSWORD=svc-pw-secret
TARGET_PYTHON=/usr/bin/python3

log() { echo "setup.sh: $*" >&2; }
die() { echo "setup.sh: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it creates users, sudoers rules and an sshd)"

mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"   # sshd and ssh need absolute paths
chmod 700 "$STATE"               # holds the private client key

# --- packages -------------------------------------------------------------
# CI starts from a fresh machine without sshd/sudo; the dev machine has them.
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v sudo >/dev/null || missing+=(sudo)
# The become tests compare doas (OpenDoas) with vanilla.
command -v doas >/dev/null || missing+=(doas)
command -v ssh >/dev/null || missing+=(openssh-client)
# Ansible needs setfacl to hand temp files to an unprivileged become user
# (vanilla and ansible-svc alike).
command -v setfacl >/dev/null || missing+=(acl)
# Vanilla ssh logs in with a password only through sshpass (the identity
# tests compare login passwords with vanilla).
command -v sshpass >/dev/null || missing+=(sshpass)
# The host-loss fault test puts a host in a network namespace of its own.
command -v ip >/dev/null || missing+=(iproute2)
[ -x "$TARGET_PYTHON" ] || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- accounts -------------------------------------------------------------
# /bin/sh and an empty home: no rc files to source, so every ssh command
# (and every become) starts as fast and as predictably as possible.
ensure_user() {
    local user="$1" home="/home/$1"
    if ! getent passwd "$user" >/dev/null; then
        log "creating user $user"
        useradd --no-create-home --home-dir "$home" --shell /bin/sh "$user"
    fi
    [ "$(getent passwd "$user" | cut -d: -f7)" = /bin/sh ] || usermod --shell /bin/sh "$user"
    # useradd leaves "!" (locked); with UsePAM off sshd refuses even key
    # logins to locked accounts. "*" forbids password login without locking.
    if [ "$user" != svc-pw ] && [ "$(getent shadow "$user" | cut -d: -f2)" != '*' ]; then
        usermod --password '*' "$user"
    fi
    # sshd's StrictModes wants the home (and ~/.ssh, below) owned by the user
    # and not group/world writable: set that rather than relax sshd.
    install -d -o "$user" -g "$user" -m 755 "$home"
}
ensure_user svc-login
ensure_user svc-pw
ensure_user svc-target

# chpasswd is cheap, and re-setting keeps the password right even if
# someone changed it by hand.
echo "svc-pw:$PW_PASSWORD" | chpasswd

# --- sudoers ----------------------------------------------------------------
sudoers_tmp="$(mktemp)"
trap 'rm -f "$sudoers_tmp"' EXIT
cat >"$sudoers_tmp" <<'EOF'
# Managed by ansible-svc tests/env/setup.sh
svc-login ALL=(ALL:ALL) NOPASSWD: ALL
svc-pw ALL=(ALL) ALL
EOF
if ! cmp -s "$sudoers_tmp" /etc/sudoers.d/svc-test; then
    visudo -cqf "$sudoers_tmp" || die "generated sudoers file does not validate"
    install -o root -g root -m 0440 "$sudoers_tmp" /etc/sudoers.d/svc-test
    log "wrote /etc/sudoers.d/svc-test"
fi

# --- doas -------------------------------------------------------------------
doas_tmp="$(mktemp)"
cat >"$doas_tmp" <<'EOF'
# Managed by ansible-svc tests/env/setup.sh
permit nopass svc-login
permit svc-pw
EOF
if ! cmp -s "$doas_tmp" /etc/doas.conf; then
    install -o root -g root -m 0400 "$doas_tmp" /etc/doas.conf
    log "wrote /etc/doas.conf"
fi
rm -f "$doas_tmp"

# --- keys -------------------------------------------------------------------
KEY="$STATE/id_ed25519"
HOSTKEY="$STATE/ssh_host_ed25519_key"
[ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C svc-test-client -f "$KEY"
[ -f "$HOSTKEY" ] || ssh-keygen -q -t ed25519 -N '' -C svc-test-host -f "$HOSTKEY"
chmod 600 "$KEY" "$HOSTKEY"
PUBKEY="$(cat "$KEY.pub")"

# Append, never overwrite: root's file may hold keys that matter to someone.
authorize() {
    local user="$1" home group
    home="$(getent passwd "$user" | cut -d: -f6)"
    group="$(id -gn "$user")"
    local ak="$home/.ssh/authorized_keys"
    install -d -o "$user" -g "$group" -m 700 "$home/.ssh"
    [ -f "$ak" ] || install -o "$user" -g "$group" -m 600 /dev/null "$ak"
    grep -qxF "$PUBKEY" "$ak" || printf '%s\n' "$PUBKEY" >>"$ak"
    chown "$user:$group" "$ak"
    chmod 600 "$ak"
}
authorize svc-login
authorize svc-pw
authorize root

# --- sshd -------------------------------------------------------------------
CONFIG="$STATE/sshd_config"
PIDFILE="$STATE/sshd.pid"
config_tmp="$(mktemp)"
trap 'rm -f "$sudoers_tmp" "$config_tmp"' EXIT
cat >"$config_tmp" <<EOF
# Generated by tests/env/setup.sh; edits are overwritten on its next run.
Port $PORT
ListenAddress $HOST
HostKey $HOSTKEY
PidFile $PIDFILE
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AuthorizedKeysFile .ssh/authorized_keys
# PAM runs the account/session stack that sudo and login expect on Debian.
UsePAM yes
# Tests open many parallel connections (forks, ControlMaster, mitogen).
MaxStartups 200
MaxSessions 200
PrintMotd no
LogLevel ERROR
Subsystem sftp /usr/lib/openssh/sftp-server
EOF

# True if the pid is a live sshd. Not kill -0: a killed sshd can linger as a
# zombie (our init reaps lazily), and a stale pidfile may name a reused pid.
is_live_sshd() {
    local comm state
    [ -n "$1" ] && read -r _ comm state _ 2>/dev/null <"/proc/$1/stat" || return 1
    [ "$comm" = "(sshd)" ] && [ "$state" != Z ] && [ "$state" != X ]
}
sshd_running() { [ -f "$PIDFILE" ] && is_live_sshd "$(cat "$PIDFILE")"; }

port_open() { timeout 1 bash -c ": >/dev/tcp/$HOST/$PORT" 2>/dev/null; }

mkdir -p /run/sshd   # privilege separation directory; not there on a fresh box
chmod 755 /run/sshd

if ! cmp -s "$config_tmp" "$CONFIG"; then
    /usr/sbin/sshd -t -f "$config_tmp" || die "generated sshd_config is invalid"
    cp "$config_tmp" "$CONFIG"
    chmod 600 "$CONFIG"
    if sshd_running; then
        log "sshd_config changed: restarting sshd"
        kill "$(cat "$PIDFILE")"
        for _ in $(seq 50); do sshd_running || break; sleep 0.1; done
    fi
fi

if ! sshd_running; then
    if port_open; then
        die "$HOST:$PORT is already taken by another process; set SVC_TEST_SSH_PORT"
    fi
    log "starting sshd on $HOST:$PORT"
    rm -f "$PIDFILE"
    /usr/sbin/sshd -f "$CONFIG" -E "$STATE/sshd.log" \
        || die "sshd failed to start; see $STATE/sshd.log"
    # Only probe right after a start: each probe leaves a line in sshd.log,
    # and for a running sshd the ssh checks below prove the same thing.
    for _ in $(seq 50); do port_open && break; sleep 0.1; done
    port_open || die "sshd is not accepting connections on $HOST:$PORT after 5 s; see $STATE/sshd.log"
fi

# --- client-side files ------------------------------------------------------
KNOWN_HOSTS="$STATE/known_hosts"
# Built from our own host key (no ssh-keyscan), so host key checking can stay on.
printf '[%s]:%s %s\n' "$HOST" "$PORT" "$(cut -d' ' -f1,2 "$HOSTKEY.pub")" >"$KNOWN_HOSTS.tmp"
mv "$KNOWN_HOSTS.tmp" "$KNOWN_HOSTS"

cat >"$STATE/ssh_env.json.tmp" <<EOF
{
  "host": "$HOST",
  "port": $PORT,
  "key": "$KEY",
  "known_hosts": "$KNOWN_HOSTS",
  "users": {"nopw": "svc-login", "pw": "svc-pw", "pw_password": "$PW_PASSWORD", "target": "svc-target"},
  "python": "$TARGET_PYTHON",
  "state": "$STATE",
  "pidfile": "$PIDFILE"
}
EOF
mv "$STATE/ssh_env.json.tmp" "$STATE/ssh_env.json"

# --- verify -----------------------------------------------------------------
SSH=(ssh -i "$KEY" -p "$PORT" -F /dev/null
     -o UserKnownHostsFile="$KNOWN_HOSTS" -o StrictHostKeyChecking=yes
     -o BatchMode=yes -o ConnectTimeout=5)
# The three checks run in parallel: each ssh round trip costs ~0.25 s here.
"${SSH[@]}" "svc-login@$HOST" 'sudo -n true' & nopw=$!
"${SSH[@]}" "svc-pw@$HOST" "echo '$PW_PASSWORD' | sudo -S -p '' -k true" & pw=$!
"${SSH[@]}" "root@$HOST" true & root=$!
wait "$nopw" || die "ssh svc-login@$HOST:$PORT 'sudo -n true' failed; see $STATE/sshd.log"
wait "$pw" || die "ssh svc-pw@$HOST:$PORT 'sudo -S -k true' with its password failed"
wait "$root" || die "ssh root@$HOST:$PORT failed; see $STATE/sshd.log"
log "ok: sshd pid $(cat "$PIDFILE") on $HOST:$PORT, state in $STATE"

# --- container targets --------------------------------------------------------
bash "$REPO/tests/env/containers.sh"
