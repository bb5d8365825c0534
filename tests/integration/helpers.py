"""Helpers for the integration tests: run ansible-playbook, read its results.

The ssh test environment itself comes from tests/env/setup.sh (`make env`);
these helpers only read the ssh_env.json it writes.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get('SVC_TEST_STATE') or REPO / '.state').resolve()
SSH_ENV_FILE = STATE / 'ssh_env.json'
CALLBACK_DIR = Path(__file__).resolve().parent / 'callback_plugins'
ANSIBLE_CFG = REPO / 'ansible.cfg'


def _find_venv_bin() -> Path:
    # Prefer the interpreter running pytest (its ansible matches what it
    # imports), then the repo's .venv; a scratch venv works either way.
    for candidate in (Path(sys.executable).parent, REPO / '.venv' / 'bin'):
        if (candidate / 'ansible-playbook').exists():
            return candidate
    return REPO / '.venv' / 'bin' if (REPO / '.venv' / 'bin').is_dir() else Path(sys.executable).parent


VENV_BIN = _find_venv_bin()

NOT_SET_UP = 'ssh test environment not set up: run `make env` as root'


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(
    not is_root(), reason='needs root (it manages users/sshd or reads root-only keys); run the tests as root')


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def load_ssh_env() -> dict:
    """ssh_env.json as a dict, or pytest.skip() saying why it is unusable."""
    if not SSH_ENV_FILE.exists():
        pytest.skip(f'{NOT_SET_UP} ({SSH_ENV_FILE} is missing)')
    env = json.loads(SSH_ENV_FILE.read_text())
    if not port_open(env['host'], env['port']):
        pytest.skip(f"{NOT_SET_UP} (nothing listens on {env['host']}:{env['port']})")
    if not os.access(env['key'], os.R_OK):
        pytest.skip(f"{NOT_SET_UP} (client key {env['key']} is not readable by this user)")
    return env


def sshd_pid(ssh_env: dict) -> int | None:
    """Pid of the live test sshd, or None (zombies and reused pids excluded)."""
    pidfile = Path(ssh_env.get('pidfile') or STATE / 'sshd.pid')
    try:
        pid = int(pidfile.read_text().strip())
        stat = Path(f'/proc/{pid}/stat').read_text()
    except (OSError, ValueError):
        return None
    comm, state = stat[stat.index('(') + 1:stat.rindex(')')], stat[stat.rindex(')') + 2]
    return pid if comm == 'sshd' and state not in 'ZX' else None


class PrivateSshd:
    """An sshd of a test's own, with the test environment's host key and
    users: one a test may stop, or put in a network namespace.

    `settings` are sshd_config lines added to (and overriding) the main
    test sshd's; `netns` runs it inside that network namespace.
    """

    def __init__(self, ssh_env: dict, home: Path, *, address: str = '127.0.0.1', port: int | None = None,
                 settings: tuple[str, ...] = (), netns: str | None = None):
        if port is None:
            with socket.socket() as sock:
                sock.bind((address if netns is None else '127.0.0.1', 0))
                port = sock.getsockname()[1]
        self.address, self.port, self.home = address, port, Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        hostkey = Path(ssh_env['state']) / 'ssh_host_ed25519_key'
        main = [line for line in (Path(ssh_env['state']) / 'sshd_config').read_text().splitlines()
                if line.split(' ', 1)[0] not in ('Port', 'ListenAddress', 'PidFile', 'LogLevel')]
        config = self.home / 'sshd_config'
        # sshd takes the first value of each keyword: ours first.
        config.write_text('\n'.join([f'Port {port}', f'ListenAddress {address}', f'PidFile {self.home}/sshd.pid',
                                     'LogLevel ERROR', *settings, *main, '']))
        self.known_hosts = self.home / 'known_hosts'
        host = address if port == 22 else f'[{address}]:{port}'
        self.known_hosts.write_text(f'{host} ' + ' '.join(Path(f'{hostkey}.pub').read_text().split()[:2]) + '\n')
        argv = ['/usr/sbin/sshd', '-D', '-f', str(config), '-E', str(self.home / 'sshd.log')]
        if netns:
            argv = ['ip', 'netns', 'exec', netns] + argv
        self.proc = subprocess.Popen(argv)
        deadline = time.monotonic() + 10
        while not port_open(address, port) and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)
        if not port_open(address, port):
            self.stop()
            raise AssertionError(f'private sshd did not start; see {self.home}/sshd.log')

    def stop(self) -> None:
        """Stop listening; sessions already open live on, as after
        ``systemctl stop ssh``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def inventory_for(ssh_env: dict, user: str = 'svc-login', become: bool = False, extra: str = '') -> str:
    """INI inventory: host `target` over ssh as `user`, plus host `local`.

    `extra` is appended to the `target` line, so it can add or override any
    variable (later key=value pairs win), e.g. "ansible_port=1".
    """
    target = [
        'target',
        f"ansible_host={ssh_env['host']}",
        f"ansible_port={ssh_env['port']}",
        f'ansible_user={user}',
        f"ansible_ssh_private_key_file={ssh_env['key']}",
        f"ansible_python_interpreter={ssh_env.get('python', '/usr/bin/python3')}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={ssh_env['known_hosts']}'",
    ]
    if become:
        target.append('ansible_become=true')
    if extra:
        target.append(extra)
    local = 'local ansible_connection=local ansible_python_interpreter=/usr/bin/python3'
    return '\n'.join(['[all]', ' '.join(target), local, ''])


def connection_only(inventory: str, fqcn: bool = False) -> str:
    """`inventory` (from inventory_for) with our connections set per host."""
    prefix = 'ansible_svc.accel.' if fqcn else ''
    lines = []
    for line in inventory.splitlines():
        if line.startswith('target '):
            line += f' ansible_connection={prefix}svc_ssh'
        line = line.replace('ansible_connection=local', f'ansible_connection={prefix}svc_local')
        lines.append(line)
    return '\n'.join(lines) + '\n'


def wait_while_running(proc, pred, what: str, timeout: float = 60):
    """Poll `pred()` until it returns something true, and return that; fail
    the test if `proc` (a started ansible-playbook) exits first, or after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pred()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f'ansible-playbook exited before {what} ({proc.returncode}):\n{proc.stdout.read()}')
        time.sleep(0.1)
    pytest.fail(f'{what} did not happen within {timeout}s')


def mux_dirs(tmpdir: Path) -> list[Path]:
    """Mux directories in `tmpdir` (the run's TMPDIR): a strategy's
    (``ansible-svc-XXXXXXXX``) and connection-only runs'
    (``ansible-svc-<uid>/run-*``; the per-user parent stays, empty)."""
    base = Path(tmpdir) / f'ansible-svc-{os.getuid()}'
    return [p for p in Path(tmpdir).glob('ansible-svc-*') if p != base] + list(base.glob('run-*'))


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str
    duration: float
    results: list[dict] = field(default_factory=list)  # one dict per task result
    stats: dict = field(default_factory=dict)         # host -> ok/changed/failures/...
    command: list[str] = field(default_factory=list)

    def tasks(self, name: str, host: str | None = None) -> list[dict]:
        return [r for r in self.results if r['task'] == name and (host is None or r['host'] == host)]

    def task(self, name: str, host: str | None = None) -> dict:
        """The one result of task `name` (on `host`); fails unless exactly one."""
        found = self.tasks(name, host)
        assert len(found) == 1, (
            f'expected exactly 1 result for task {name!r} host {host!r}, got {len(found)}\n{self.output}')
        return found[0]

    @property
    def output(self) -> str:
        """Everything a failing assertion should show."""
        return (f'$ {" ".join(self.command)}\nrc={self.rc} duration={self.duration:.1f}s\n'
                f'--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}')

    def assert_ok(self) -> PlaybookResult:
        assert self.rc == 0, self.output
        return self


def prepare_playbook(playbook: str | os.PathLike, *, tmp_path: Path, inventory: str,
                     strategy: str = 'svc_linear', extra_vars: dict | None = None,
                     env: dict | None = None, args: list[str] | None = None,
                     bin_dir: Path | None = None):
    """Write the files run_playbook needs; return (argv, environment, results file).

    Same arguments as run_playbook (see there); used by tests that must
    start ansible-playbook themselves (to signal it mid-run).

    `playbook` is YAML text, or a path to an existing playbook file.
    `inventory` is INI inventory text (see inventory_for()).
    `env` entries override the defaults set here; a None value removes one.
    """
    tmp_path = Path(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    if isinstance(playbook, os.PathLike) or ('\n' not in playbook and Path(playbook).is_file()):
        pb_file = Path(playbook).resolve()
    else:
        pb_file = tmp_path / 'playbook.yml'
        pb_file.write_text(playbook)
    inv_file = tmp_path / 'inventory.ini'
    inv_file.write_text(inventory)
    results_file = tmp_path / 'results.jsonl'
    results_file.unlink(missing_ok=True)

    cmd = [str((bin_dir or VENV_BIN) / 'ansible-playbook'), '-i', str(inv_file)]
    if extra_vars:
        ev_file = tmp_path / 'extra_vars.json'
        ev_file.write_text(json.dumps(extra_vars))
        cmd += ['-e', f'@{ev_file}']
    cmd += list(args or []) + [str(pb_file)]

    run_env = dict(os.environ)
    run_env.pop('ANSIBLE_CONFIG', None)
    if ANSIBLE_CFG.exists():
        run_env['ANSIBLE_CONFIG'] = str(ANSIBLE_CFG)
    run_env.update({
        'ANSIBLE_STRATEGY': strategy,
        'ANSIBLE_HOST_KEY_CHECKING': 'True',
        'ANSIBLE_PIPELINING': 'True',
        'ANSIBLE_CALLBACKS_ENABLED': 'svc_results',
        'ANSIBLE_CALLBACK_PLUGINS': str(CALLBACK_DIR),
        'SVC_RESULTS_FILE': str(results_file),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'),
        # Plugins import ansible_svc; make it importable even from a venv
        # where the project is not pip-installed.
        'PYTHONPATH': os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])),
    })
    for key, value in (env or {}).items():
        if value is None:
            run_env.pop(key, None)
        else:
            run_env[key] = str(value)

    return cmd, run_env, results_file


def run_playbook(playbook: str | os.PathLike, *, tmp_path: Path, inventory: str,
                 strategy: str = 'svc_linear', extra_vars: dict | None = None,
                 env: dict | None = None, args: list[str] | None = None,
                 timeout: float = 300, cwd: str | os.PathLike | None = None,
                 bin_dir: Path | None = None) -> PlaybookResult:
    """Run ansible-playbook and return its exit code, output and per-task results.

    `playbook` is YAML text, or a path to an existing playbook file.
    `inventory` is INI inventory text (see inventory_for()).
    `env` entries override the defaults set here; a None value removes one.
    `bin_dir` holds the ansible-playbook to run (default: the tests' venv).
    """
    tmp_path = Path(tmp_path)
    cmd, run_env, results_file = prepare_playbook(
        playbook, tmp_path=tmp_path, inventory=inventory, strategy=strategy,
        extra_vars=extra_vars, env=env, args=args, bin_dir=bin_dir)

    start = time.monotonic()
    # Own session so a timeout can kill ansible's workers and ssh children too.
    proc = subprocess.Popen(cmd, cwd=cwd or tmp_path, env=run_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        result = PlaybookResult(-9, stdout, stderr, time.monotonic() - start, command=cmd)
        pytest.fail(f'ansible-playbook timed out after {timeout}s\n{result.output}', pytrace=False)
    duration = time.monotonic() - start

    results, stats = read_results(results_file)
    return PlaybookResult(proc.returncode, stdout, stderr, duration, results, stats, cmd)


def read_results(results_file: Path) -> tuple[list[dict], dict]:
    """(task results, stats) recorded by the svc_results callback so far."""
    results, stats = [], {}
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            record = json.loads(line)
            if record.pop('event') == 'stats':
                stats = record['stats']
            else:
                results.append(record)
    return results, stats


# --- Added for the behaviour-parity and process tests ------------------------
# (Appended; the API above is unchanged.)

import re as _re

#: Result keys whose values legitimately differ between two runs of the same
#: task (clocks), whatever the strategy.
VOLATILE_KEYS = frozenset({'start', 'end', 'delta', 'atime', 'mtime', 'ctime', 'time',
                           # a recreated file gets a new inode and generation
                           'inode', 'version'})

#: Ansible's remote temp dirs carry a timestamp and pid in their name.
_TMP_NAME = _re.compile(r'ansible-tmp-[0-9.]+-[0-9]+-[0-9]+')
#: A remote temp dir path, up to and including the per-task dir.
_ANSIBLE_TMP = _re.compile(r'/[^"\s]*?/ansible-tmp-[0-9.]+-[0-9]+-[0-9]+')
#: copy's content= goes through a tempfile with a random name.
_RANDOM_BASENAME = _re.compile(r'^\.[a-z0-9_]{8}$')


def normalize(value, drop=frozenset()):
    """A task result with clock fields removed and temp dir names masked."""
    if isinstance(value, dict):
        return {k: ('<RANDOM>' if k == '_original_basename' and isinstance(v, str) and _RANDOM_BASENAME.match(v)
                    else normalize(v, drop))
                for k, v in value.items() if k not in VOLATILE_KEYS and k not in drop}
    if isinstance(value, list):
        return [normalize(v, drop) for v in value]
    if isinstance(value, str):
        return _TMP_NAME.sub('<TMP>', _ANSIBLE_TMP.sub('<REMOTE_TMP>', value))
    return value


def comparable(result: PlaybookResult, drop=frozenset()) -> dict:
    """{(host, task): (status, normalized result)} for every task result."""
    out = {}
    for r in result.results:
        key = (r['host'], r['task'])
        assert key not in out, f'task name {key} is not unique in the playbook'
        out[key] = (r['status'], normalize(r['result'], drop))
    return out


def assert_same_results(vanilla: PlaybookResult, svc: PlaybookResult, drop=frozenset(), skip_tasks=()):
    """Every task ended the same way with the same (normalized) result."""
    a = {k: v for k, v in comparable(vanilla, drop).items() if k[1] not in skip_tasks}
    b = {k: v for k, v in comparable(svc, drop).items() if k[1] not in skip_tasks}
    assert sorted(a) == sorted(b), (
        f'different task results: only vanilla {sorted(set(a) - set(b))}, only svc {sorted(set(b) - set(a))}')
    diffs = []
    for key in sorted(a):
        if a[key] != b[key]:
            diffs.append(f'{key}:\n  vanilla: {json.dumps(a[key], sort_keys=True, default=str)}\n'
                         f'  svc:     {json.dumps(b[key], sort_keys=True, default=str)}')
    assert not diffs, 'svc_linear differs from linear:\n' + '\n'.join(diffs)


def processes() -> dict[int, tuple[str, str]]:
    """{pid: (user, command line)} of every live (non-zombie) process."""
    import pwd
    procs = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            if stat[stat.rindex(')') + 2] in 'ZX':
                continue
            cmdline = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
            uid = entry.stat().st_uid
        except (OSError, ValueError):
            continue
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        procs[int(entry.name)] = (user, cmdline)
    return procs


def svc_processes(users=('svc-login', 'svc-pw', 'svc-target')) -> dict[int, tuple[str, str]]:
    """Processes that belong to an ansible-svc run: the mux, mitogen
    interpreters (`python3(mitogen:ansible-svc)`), and any python process of
    the test users."""
    me = os.getpid()
    found = {}
    for pid, (user, cmd) in processes().items():
        if pid == me:
            continue
        if ('ansible_svc.mux' in cmd or 'mitogen:ansible-svc' in cmd or 'ansible-svc' in cmd.split(' ')[0]
                or (user in users and 'python' in cmd)):
            found[pid] = (user, cmd)
    return found


def wait_gone(pids, timeout: float = 15.0) -> dict[int, tuple[str, str]]:
    """Poll until none of `pids` is alive; return those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {p: v for p, v in processes().items() if p in set(pids)}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.25)


def new_svc_processes_after(before: dict, timeout: float = 15.0) -> dict:
    """svc processes that did not exist in `before` and are still alive
    after polling up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p: v for p, v in svc_processes().items() if p not in before}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)
