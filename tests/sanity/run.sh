#!/usr/bin/env bash
# `ansible-test sanity` on the collection as ansible-galaxy builds it, with the
# newest core's ansible-test (make sanity). Usage: tests/sanity/run.sh VENV [ansible-test args...]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=$(cd "$1" && pwd); shift
python=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work=$(mktemp -d /tmp/svc-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
# ansible-test wants the collection under ansible_collections/<ns>/<name>,
# and (in a git tree) checks only the files git knows.
"$venv/bin/ansible-galaxy" collection build "$repo" --output-path "$work/dist" >/dev/null
coll="$work/ansible_collections/ansible_svc/accel"
mkdir -p "$coll"
tar -xzf "$work"/dist/ansible_svc-accel-*.tar.gz -C "$coll"
(cd "$coll" && git init -q . && git add -A)
run() { (cd "$coll" && "$venv/bin/ansible-test" sanity --requirements --python "$python" "$@"); }
# ansible-test fetches pip's get-pip.py from a host CI cannot reach and tells
# where it would cache it: put our stand-in there and run again.
if ! out=$(run "$@" 2>&1); then
    cache=$(sed -n 's/^The bootstrap script can be manually downloaded and saved to: //p' <<<"$out")
    if [ -z "$cache" ]; then printf '%s\n' "$out"; exit 1; fi
    mkdir -p "$(dirname "$cache")"
    cp "$repo/tests/sanity/get_pip.py" "$cache"
    run "$@"
else
    printf '%s\n' "$out"
fi
