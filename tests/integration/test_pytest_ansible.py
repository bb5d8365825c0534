"""pytest-ansible through ansible-svc (issue 16).

pytest-ansible's fixtures (``ansible_module``, ``ansible_adhoc``) run each
module call as a one-task play *inside the pytest process*, through
ansible-core's TaskQueueManager. These tests run a user's suite of such
tests (USER_SUITE below) in a pytest of its own, once per way of switching
ansible-svc on (and once vanilla, as the control), and check:

- the modules' results: command output, a file copied to the target (and
  not again), become to another user, a second host over ``svc_local``;
- that ansible-svc served them: each task's parent process on the target is
  one of our interpreters (``python3(mitogen:ansible-svc)``) running as the
  right user, one mux served the whole session (it watches that pytest's pid
  in connection mode, it holds its lifeline in strategy mode), and the target
  interpreter outlived each module call;
- that nothing is left once that pytest has ended: its mux, the target
  interpreters and the mux's directory are gone (bounded polling).

Why a pytest of its own rather than the fixtures in this session: what an
in-process run does depends on process-wide state that is set once and then
sticks for the rest of the session:

- ansible-core keeps its CLI arguments in a singleton (``GlobalCLIArgs``);
  pytest-ansible sets them on each module call, but only the first call of
  the process takes: its connection, user and become method stay for every
  later call, whatever that call passes as ``connection=``;
- the strategy is the one in the ansible.cfg ansible-core read at import (in
  this suite, the checkout's: ``svc_linear``). A svc_* strategy then routes
  the process's ``ssh``/``local`` plugin loads through ours and keeps its mux
  until the process exits: in this session, that would reach every later
  test.

A pytest of its own gets exactly the configuration each case names, and its
exit is the end of the run that its mux must follow.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import REPO, inventory_for, mux_dirs

#: The user's suite: what someone testing their hosts with pytest-ansible
#: writes. The connection comes from the command line or ansible.cfg (one per
#: session: see the module docstring) or, for the second host, from the
#: inventory. `record` keeps what the outer test checks: the chain of the
#: task's ancestors on the target, and this pytest's mux.
USER_SUITE = r'''
import json
import os
import pwd
from pathlib import Path

EVIDENCE = Path(os.environ['SVC_EVIDENCE'])
OUT = Path(os.environ['SVC_OUT'])

#: One line per ancestor of the task's shell: pid, start time, user, command line
#: (NULs and newlines as spaces: a make recipe's shell has newlines in its own).
CHAIN = """p=$PPID
while [ "$p" -gt 1 ]; do
  printf '%s %s %s %s\\n' "$p" "$(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f20)" "$(stat -c %U /proc/$p)" \\
    "$(tr '\\0\\n' '  ' </proc/$p/cmdline)"
  p=$(awk '/^PPid:/ {print $2}' /proc/$p/status)
done"""


def my_muxes():
    """[pid, start time, command line] of the ansible-svc muxes of this
    pytest: its children (strategy mode) or watching it (connection mode)."""
    me, found = os.getpid(), []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(')') + 2:].split()
        if 'ansible_svc.mux' in cmd and (int(fields[1]) == me or f'--watch {me}:' in cmd):
            found.append([int(entry.name), fields[19], cmd.strip()])
    return found


def record(name, result):
    assert result['rc'] == 0, dict(result)
    chain = [line.split(' ', 3) for line in result['stdout'].splitlines()]
    with EVIDENCE.open('a') as fp:
        fp.write(json.dumps({'test': name, 'chain': chain, 'muxes': my_muxes()}) + '\n')


def test_command(ansible_module):
    result = ansible_module.command('id -un')['target']
    assert result['stdout'] == 'svc-login', dict(result)
    record('command', ansible_module.shell(CHAIN)['target'])


def test_copy(ansible_module):
    dest = OUT / 'from-pytest-ansible.txt'
    first = ansible_module.copy(content='written through pytest-ansible\n', dest=str(dest), mode='0640')['target']
    assert first.is_changed and first.is_successful, dict(first)
    again = ansible_module.copy(content='written through pytest-ansible\n', dest=str(dest), mode='0640')['target']
    assert again.is_ok, dict(again)
    assert dest.read_text() == 'written through pytest-ansible\n'
    assert pwd.getpwuid(dest.stat().st_uid).pw_name == 'svc-login'
    assert ansible_module.stat(path=str(dest))['target']['stat']['checksum'] == first['checksum']
    record('copy', ansible_module.shell(CHAIN)['target'])


def test_become(ansible_adhoc):
    target = ansible_adhoc(become=True, become_user='svc-target')['target']
    result = target.command('id -un')['target']
    assert result['stdout'] == 'svc-target', dict(result)
    record('become', target.shell(CHAIN)['target'])


def test_local(ansible_adhoc):
    local = ansible_adhoc()['local']
    result = local.command('id -un')['local']
    assert result['stdout'] == pwd.getpwuid(os.getuid()).pw_name, dict(result)
    record('local', local.shell(CHAIN)['local'])
'''

USER_TESTS = ['become', 'command', 'copy', 'local']

ACCELERATED = 'mitogen:ansible-svc'


@dataclass(frozen=True)
class Mode:
    """One way of running the user's suite."""
    #: ``[defaults]`` lines of the ansible.cfg the suite runs with.
    cfg: tuple[str, ...]
    #: pytest-ansible's command-line options beyond inventory and host pattern.
    args: tuple[str, ...]
    #: ``ansible_connection`` of the inventory's second host, ``local``.
    local: str
    #: How this run's mux ends: ``--watch`` (it watches the pytest process,
    #: connection mode), ``--lifeline-fd`` (strategy mode), None (vanilla).
    mux: str | None
    #: The collection on ANSIBLE_COLLECTIONS_PATH.
    collection: bool = False


PLUGIN_PATHS = (f'connection_plugins = {REPO}/plugins/connection',)

MODES = {
    # The connection on pytest-ansible's command line, by its short name
    # (ansible.cfg's plugin path finds it).
    'cli-connection': Mode(cfg=PLUGIN_PATHS, args=('--ansible-connection', 'svc_ssh'), local='svc_local',
                           mux='--watch'),
    # ansible.cfg's transport: pytest-ansible's --ansible-connection defaults to it.
    'cfg-transport': Mode(cfg=PLUGIN_PATHS + ('transport = svc_ssh',), args=(), local='svc_local', mux='--watch'),
    # By FQCN from the collection on ANSIBLE_COLLECTIONS_PATH. In a venv where
    # the project is pip-installed editable, its import hook makes
    # `ansible_collections` a plain namespace package as soon as pytest-ansible
    # builds the inventory, before it sets up ansible-core's collection loader;
    # --ansible-unit-inject-only sets that loader up first (from a regular
    # `pip install .` the FQCN works without it).
    'fqcn': Mode(cfg=(), args=('--ansible-connection', 'ansible_svc.accel.svc_ssh', '--ansible-unit-inject-only'),
                 local='ansible_svc.accel.svc_local', mux='--watch', collection=True),
    # The strategy in ansible.cfg; pytest-ansible's connection stays ssh
    # (core's default) and the local host local: the strategy serves both.
    'cfg-strategy': Mode(cfg=PLUGIN_PATHS + (f'strategy_plugins = {REPO}/plugins/strategy',
                                             f'action_plugins = {REPO}/plugins/action', 'strategy = svc_linear'),
                         args=(), local='local', mux='--lifeline-fd'),
    # The control: the same suite without ansible-svc.
    'vanilla': Mode(cfg=(), args=(), local='local', mux=None),
}

#: Bound on the wait for the mux and the target interpreters to end after
#: the user's pytest has exited (they take well under a second).
GONE_TIMEOUT = 30.0

#: Bound on the user's whole pytest run (a few seconds).
RUN_TIMEOUT = 300


@pytest.fixture
def out_dir():
    """Where svc-login may write (pytest's tmp_path is private to root)."""
    out = Path(tempfile.mkdtemp(prefix='svc-pa-out-'))
    os.chmod(out, 0o1777)
    yield out
    shutil.rmtree(out)


def _start_time(pid: int) -> str | None:
    """Start time of live (non-zombie) process `pid`, or None."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(')') + 2:].split()
    return None if fields[0] in 'ZX' else fields[19]


def _run_user_suite(mode: Mode, ssh_env: dict, tmp_path: Path, run_tmpdir: Path, out_dir: Path):
    """Run USER_SUITE in a pytest of its own; return (process, its output,
    the evidence records by test name)."""
    suite = tmp_path / 'test_user_suite.py'
    suite.write_text(USER_SUITE)
    (tmp_path / 'pytest.ini').write_text('[pytest]\n')
    cfg = tmp_path / 'ansible.cfg'
    cfg.write_text('\n'.join(['[defaults]', *mode.cfg, '']))
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text(inventory_for(ssh_env).replace('ansible_connection=local', f'ansible_connection={mode.local}'))
    evidence = tmp_path / 'evidence.jsonl'

    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'PYTEST_'))}
    env.update({
        'ANSIBLE_CONFIG': str(cfg),
        'ANSIBLE_PIPELINING': 'True',  # vanilla's become to an unprivileged user
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'),
        'TMPDIR': str(run_tmpdir),  # where the mux's directory goes
        'SVC_EVIDENCE': str(evidence),
        'SVC_OUT': str(out_dir),
        # Plugins import ansible_svc; also from a venv without the project.
        'PYTHONPATH': os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])),
    })
    if mode.collection:
        collections = tmp_path / 'collections'
        (collections / 'ansible_collections' / 'ansible_svc').mkdir(parents=True)
        (collections / 'ansible_collections' / 'ansible_svc' / 'accel').symlink_to(REPO)
        env['ANSIBLE_COLLECTIONS_PATH'] = str(collections)

    argv = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-c', str(tmp_path / 'pytest.ini'),
            '--rootdir', str(tmp_path), str(suite), '--ansible-inventory', str(inventory),
            '--ansible-host-pattern', 'target', *mode.args]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f'the user suite did not end within {RUN_TIMEOUT}s:\n{output}', pytrace=False)
    output = f'$ {" ".join(argv)}\nrc={proc.returncode}\n{output}'
    records = {}
    if evidence.exists():
        for line in evidence.read_text().splitlines():
            record = json.loads(line)
            records[record['test']] = record
    return proc, output, records


def _interpreters(record: dict) -> set[tuple[int, str]]:
    """(pid, start time) of our interpreters among a task's ancestors."""
    return {(int(pid), start) for pid, start, _user, cmd in record['chain'] if ACCELERATED in cmd}


def _leftovers(processes: set[tuple[int, str]], tmpdir: Path) -> tuple[set, list]:
    """Poll (bounded) until none of `processes` runs and `tmpdir` holds no
    mux directory; return what is still there."""
    deadline = time.monotonic() + GONE_TIMEOUT
    while True:
        alive = {(pid, start) for pid, start in processes if _start_time(pid) == start}
        dirs = mux_dirs(tmpdir)
        if (not alive and not dirs) or time.monotonic() > deadline:
            return alive, dirs
        time.sleep(0.1)


@pytest.mark.parametrize('mode', list(MODES.values()), ids=list(MODES))
def test_pytest_ansible_suite(mode, ssh_env, sshd_alive, tmp_path, run_tmpdir, out_dir):
    proc, output, records = _run_user_suite(mode, ssh_env, tmp_path, run_tmpdir, out_dir)
    assert proc.returncode == 0, output
    assert sorted(records) == USER_TESTS, output
    copied = out_dir / 'from-pytest-ansible.txt'
    assert copied.read_text() == 'written through pytest-ansible\n'
    assert copied.owner() == 'svc-login'

    parents = {name: record['chain'][0] for name, record in records.items()}
    muxes = {name: tuple(tuple(m) for m in record['muxes']) for name, record in records.items()}
    if mode.mux is None:
        for name, record in records.items():
            assert not any(ACCELERATED in cmd for *_, cmd in record['chain']), (name, record['chain'])
        assert not any(muxes.values()), muxes
    else:
        # Served by our interpreters, as the user each task asked for.
        users = {'command': 'svc-login', 'copy': 'svc-login', 'become': 'svc-target',
                 'local': pwd.getpwuid(os.getuid()).pw_name}
        for name, (_pid, _start, user, cmd) in parents.items():
            assert ACCELERATED in cmd and user == users[name], (name, parents[name], output)
        # One mux for the whole pytest session, ended as this mode ends it.
        assert len(set(muxes.values())) == 1 and len(muxes['command']) == 1, muxes
        (_pid, _start, mux_cmd), = muxes['command']
        assert f' {mode.mux} ' in f' {mux_cmd} ', mux_cmd
        # The login's interpreter on the target outlived the first test's
        # module calls and served the second test's.
        assert _interpreters(records['command']) & _interpreters(records['copy']), (
            records['command']['chain'], records['copy']['chain'])

    # The user's pytest has ended: so has everything it started.
    started = {(pid, start) for m in muxes.values() for pid, start, _cmd in m}
    for record in records.values():
        started |= _interpreters(record)
    alive, dirs = _leftovers(started, run_tmpdir)
    assert not alive and not dirs, (
        f'still there {GONE_TIMEOUT}s after the user suite ended: processes {sorted(alive)}, mux dirs {dirs}')
