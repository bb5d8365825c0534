"""Run demo/site.yml with vanilla `linear` and with `svc_linear`; compare.

Usage (from the repository root, after `make venv env`; `make demo` does it):

    .venv/bin/python demo/run_demo.py

The target is this machine, over the loopback test sshd as user svc-login
when `make env` has set it up (.state/ssh_env.json), else the `local`
connection. Both runs use the repository's ansible.cfg; the vanilla run
also enables pipelining, its fastest stock setting. Exits non-zero, showing
the captured output, if either run fails.

Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "demo" / "site.yml"
ANSIBLE_CFG = REPO / "ansible.cfg"
SSH_ENV = Path(os.environ.get("SVC_TEST_STATE") or REPO / ".state") / "ssh_env.json"
TIMEOUT = 600  # seconds per ansible-playbook run
WORKLOAD = "70 module runs (a 50-item command loop + 20 file/stat/copy/template/lineinfile tasks)"

# (label, strategy, extra environment). svc_linear runs first, so whatever
# the first run warms up (page cache, __pycache__) favours vanilla.
RUNS = [
    ("svc_linear", "svc_linear", {}),
    ("vanilla linear (pipelining)", "linear", {"ANSIBLE_PIPELINING": "True"}),
]

RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)


def ssh_target() -> dict | None:
    """The test sshd's settings, or None when it is not usable."""
    if not SSH_ENV.exists():
        return None
    env = json.loads(SSH_ENV.read_text())
    if not os.access(env["key"], os.R_OK):
        print("note: %s is not readable by this user; using the local connection" % env["key"])
        return None
    try:
        socket.create_connection((env["host"], env["port"]), timeout=2).close()
    except OSError:
        print("note: nothing listens on %s:%s (run `make env`); using the local connection" % (env["host"], env["port"]))
        return None
    return env


def inventory(env: dict | None) -> str:
    if env is None:
        return "target ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
    return " ".join([
        "target",
        "ansible_connection=ssh",
        "ansible_host=%s" % env["host"],
        "ansible_port=%s" % env["port"],
        "ansible_user=%s" % env["users"]["nopw"],
        "ansible_ssh_private_key_file=%s" % env["key"],
        "ansible_python_interpreter=%s" % env.get("python", "/usr/bin/python3"),
        "ansible_ssh_common_args='-o UserKnownHostsFile=%s'" % env["known_hosts"],
    ]) + "\n"


def run(strategy: str, extra_env: dict, workdir: Path, inventory_file: Path):
    """Run the playbook once; return (seconds, rc, output)."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_STRATEGY": strategy,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
    })
    env.update(extra_env)
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory_file), str(PLAYBOOK)]
    start = time.monotonic()
    # Own session, so that a timeout can kill ansible's workers and ssh too.
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += "\n[run_demo] killed after %d s\n" % TIMEOUT
    return time.monotonic() - start, proc.returncode, output


def recap_problems(output: str) -> list[str]:
    """Hosts whose PLAY RECAP shows failed or unreachable tasks (or no recap)."""
    recap = output.rsplit("PLAY RECAP", 1)
    if len(recap) != 2 or not RECAP_LINE.search(recap[1]):
        return ["no PLAY RECAP in the output"]
    problems = []
    for host, counters in RECAP_LINE.findall(recap[1]):
        stats = dict((k, int(v)) for k, v in (c.split("=") for c in counters.split()))
        if stats.get("failed", 1) or stats.get("unreachable", 1):
            problems.append("%s: %s" % (host, counters.strip()))
    return problems


def main() -> int:
    env = ssh_target()
    if env is None:
        where = "via the local connection (no ssh test environment: run `make env` as root for the ssh demo)"
    else:
        where = "over ssh (%s:%s, user %s)" % (env["host"], env["port"], env["users"]["nopw"])
    print("ansible-svc demo: %s on 1 host %s" % (WORKLOAD, where), flush=True)

    times = {}
    with tempfile.TemporaryDirectory(prefix="svc-demo-run-") as tmp:
        workdir = Path(tmp)
        inventory_file = workdir / "inventory.ini"
        inventory_file.write_text(inventory(env))
        for label, strategy, extra_env in RUNS:
            print("  running %s ..." % label, flush=True)
            seconds, rc, output = run(strategy, extra_env, workdir, inventory_file)
            problems = recap_problems(output)
            if rc != 0 or problems:
                print(output)
                print("demo FAILED: %s run exited %s%s" % (label, rc, "".join("\n  " + p for p in problems)))
                return 1
            times[label] = seconds

    width = max(len(label) for label, _, _ in RUNS)
    vanilla = times[RUNS[1][0]]
    print()
    for label, strategy, _ in reversed(RUNS):
        line = "  %-*s : %5.1f s" % (width, label, times[label])
        if strategy != "linear":
            ratio = vanilla / times[label]
            line += "   (%.1fx %s)" % ((ratio, "faster") if ratio >= 1 else (1 / ratio, "slower"))
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
