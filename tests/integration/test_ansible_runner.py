"""Playbooks through ansible-runner (issue 16, execution environments): what
AWX/AAP and ansible-navigator run inside an execution environment, here with
process isolation off and no container runtime.

The collection is found by FQCN on ``ANSIBLE_COLLECTIONS_PATH`` (as in an EE
image) and switched on in one of the two ways docs/execution-environments.md
gives: the project's ``ansible.cfg`` names the strategy, or the job's
environment names the connection (``ANSIBLE_TRANSPORT``).

Checked: the job's status and rc, the task results in runner's events, and
that ansible-svc served the tasks (a task's parent process on the target is
``python3(mitogen:ansible-svc)``). Then runner ends a job mid-task, through
its ``cancel_callback`` and through its job ``timeout``: runner SIGKILLs
ansible-playbook's process group, and afterwards nothing of that run may be
left: not its mux, its target interpreters (ssh login, become, local), their
task processes, Ansible's workers, nor the mux's directory.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import ansible_runner
import pytest

from helpers import REPO, VENV_BIN, inventory_for, mux_dirs, processes

pytestmark = pytest.mark.newest_core_only

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
      changed_when: false
    - name: who
      command: id -un
    - name: become
      command: id -un
      become: true
      when: inventory_hostname == 'target'
    - name: sleep
      command: sleep {{ sleep_for }}
      when: sleep_for is defined
    - name: after
      command: echo done
"""

#: The job timeout of the timed-out runs, in seconds (runner takes whole
#: seconds). The play reaches its long sleep in about 3 s on the 2-core dev
#: machine; the rest is room for a loaded one.
JOB_TIMEOUT = 20

#: How long anything of a run may outlive the end of runner's job (the
#: signal tests allow 5 s after a SIGKILL of the controller; this leaves
#: room for a loaded machine).
LEFTOVER_BOUND = 15.0

#: How often runner looks at its cancel callback and timeout while the
#: job is quiet (its default is every 5 s).
PEXPECT_TIMEOUT = 0.5

MODES = ['strategy', 'transport']
ACCELERATED = 'mitogen:ansible-svc'


def _job(tmp_path: Path, run_tmpdir: Path, ssh_env: dict, mode: str) -> tuple[Path, dict, str]:
    """A private data dir with the playbook and a project ansible.cfg, the
    job's envvars, and its inventory, for `mode`."""
    private = tmp_path / 'runner'
    project = private / 'project'
    project.mkdir(parents=True)
    (project / 'playbook.yml').write_text(PLAYBOOK)
    collections = tmp_path / 'collections' / 'ansible_collections' / 'ansible_svc'
    collections.mkdir(parents=True)
    (collections / 'accel').symlink_to(REPO)
    inventory = inventory_for(ssh_env)
    envvars = {
        'ANSIBLE_CONFIG': str(project / 'ansible.cfg'),
        'ANSIBLE_COLLECTIONS_PATH': str(tmp_path / 'collections'),
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'),
        # The mux's socket lives here: short, and this test's own.
        'TMPDIR': str(run_tmpdir),
        'PATH': os.pathsep.join([str(VENV_BIN), os.environ.get('PATH', '')]),
        # As helpers.prepare_playbook: ansible_svc importable from any venv.
        'PYTHONPATH': os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])),
    }
    if mode == 'strategy':
        (project / 'ansible.cfg').write_text('[defaults]\nstrategy = ansible_svc.accel.svc_linear\n')
    else:
        (project / 'ansible.cfg').write_text('[defaults]\n')
        envvars['ANSIBLE_TRANSPORT'] = 'ansible_svc.accel.svc_ssh'
        # `transport` leaves hosts set to `local` to vanilla's local.
        inventory = inventory.replace('ansible_connection=local', 'ansible_connection=ansible_svc.accel.svc_local')
    return private, envvars, inventory


def _run(private: Path, envvars: dict, inventory: str, **kwargs):
    settings = {'process_isolation': False, 'pexpect_timeout': PEXPECT_TIMEOUT, **kwargs.pop('settings', {})}
    # A cancel_callback of our own also keeps runner from installing its
    # SIGINT/SIGTERM handlers in pytest's process.
    kwargs.setdefault('cancel_callback', lambda: False)
    return ansible_runner.run(private_data_dir=str(private), playbook='playbook.yml', inventory=inventory,
                              envvars=envvars, settings=settings, quiet=True, **kwargs)


def _output(r) -> str:
    stdout = Path(r.config.artifact_dir) / 'stdout'
    text = stdout.read_text(errors='replace') if stdout.exists() else ''
    return f'status={r.status} rc={r.rc}\n--- stdout ---\n{text[-6000:]}'


def _events(r, event: str) -> dict[tuple[str, str], dict]:
    """{(host, task): event_data} of runner's `event` events."""
    found = {}
    for e in r.events:
        if e['event'] == event:
            data = e['event_data']
            found[(data['host'], data['task'])] = data
    return found


def _assert_accelerated(ok: dict, out: str):
    for host in ('target', 'local'):
        parent = ok[(host, 'parent')]['res']['stdout']
        assert ACCELERATED in parent, (host, parent, out)


def _run_leftovers(run_tmpdir: Path, private: Path) -> dict[int, tuple[str, str]]:
    """Processes whose command line names this run's files: its mux
    (socket under run_tmpdir), ansible-playbook and its workers."""
    return {pid: v for pid, v in processes().items() if str(run_tmpdir) in v[1] or str(private) in v[1]}


def _wait_no_run_leftovers(run_tmpdir: Path, private: Path, snapshot: dict | None = None):
    deadline = time.monotonic() + LEFTOVER_BOUND
    while True:
        left = _run_leftovers(run_tmpdir, private)
        left.update({pid: (user, cmd) for pid, (user, cmd, _) in _alive(snapshot or {}).items()})
        dirs = mux_dirs(run_tmpdir)
        if (not left and not dirs) or time.monotonic() > deadline:
            return left, dirs
        time.sleep(0.1)


@pytest.mark.parametrize('mode', MODES)
def test_runner_job_is_served_by_ansible_svc(tmp_path, run_tmpdir, ssh_env, sshd_alive, mode):
    private, envvars, inventory = _job(tmp_path, run_tmpdir, ssh_env, mode)
    r = _run(private, envvars, inventory)
    out = _output(r)
    assert (r.status, r.rc) == ('successful', 0), out
    ok = _events(r, 'runner_on_ok')
    _assert_accelerated(ok, out)
    assert ok[('target', 'who')]['res']['stdout'] == 'svc-login', out
    assert ok[('local', 'who')]['res']['stdout'] == 'root', out
    assert ok[('target', 'become')]['res']['stdout'] == 'root', out
    for host in ('target', 'local'):
        assert ok[(host, 'after')]['res']['stdout'] == 'done', out
        assert ok[(host, 'after')]['res']['rc'] == 0, out
    assert set(_events(r, 'runner_on_skipped')) == {('target', 'sleep'), ('local', 'sleep'), ('local', 'become')}, out
    assert not _events(r, 'runner_on_failed') and not _events(r, 'runner_on_unreachable'), out
    assert r.stats['failures'] == {} and r.stats['dark'] == {}, r.stats
    left, dirs = _wait_no_run_leftovers(run_tmpdir, private)
    assert not left and not dirs, (_fmt(left), dirs)


# --- the job ended by runner -------------------------------------------------

def _proc_table() -> dict[int, tuple[int, str, str, str]]:
    """{pid: (ppid, start time, user, command line)} of live processes."""
    table = {}
    for pid, (user, cmd) in processes().items():
        try:
            fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        table[pid] = (int(fields[1]), fields[19], user, cmd)
    return table


def _snapshot(run_tmpdir: Path, sleep_for: str) -> dict[int, tuple[str, str, str]]:
    """{pid: (user, command line, start time)} of everything of ansible-svc
    this run has: its mux and what the mux started (ssh, local
    interpreters), the interpreters that run this run's sleeps, and all
    their descendants (become interpreters, task processes, the sleeps)."""
    table = _proc_table()
    roots = {pid for pid, (_, _, _, cmd) in table.items() if 'ansible_svc.mux' in cmd and str(run_tmpdir) in cmd}
    for pid, (_, _, _, cmd) in table.items():
        if cmd != f'sleep {sleep_for}':
            continue
        while pid in table and pid > 1:
            if ACCELERATED in table[pid][3]:
                roots.add(pid)
            pid = table[pid][0]
    children: dict[int, set[int]] = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, set()).add(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return {pid: (table[pid][2], table[pid][3], table[pid][1]) for pid in found}


def _alive(snapshot: dict) -> dict[int, tuple[str, str, str]]:
    """Those of `snapshot` still running (same pid and start time)."""
    table = _proc_table()
    return {pid: v for pid, v in snapshot.items() if pid in table and table[pid][1] == v[2]}


def _fmt(procs: dict) -> str:
    return '\n'.join(f'  {pid} {v[0]}: {v[1][:160]}' for pid, v in sorted(procs.items()))


def _kinds(snapshot: dict) -> set[str]:
    """Which of the processes the run must have are in `snapshot`."""
    kinds = set()
    ours = {pid for pid, (_, cmd, _) in snapshot.items() if cmd.endswith(f'({ACCELERATED})')}
    for pid, (user, cmd, _) in snapshot.items():
        if 'ansible_svc.mux' in cmd:
            kinds.add('mux')
        elif pid in ours and user == 'svc-login':
            kinds.add('ssh interpreter')
        elif pid in ours and user == 'root':
            kinds.add('root interpreter')   # local, and become on the target
        elif cmd.startswith('sleep '):
            kinds.add(f'sleep as {user}')
    return kinds


@pytest.mark.parametrize('how', ['cancel', 'timeout'])
@pytest.mark.parametrize('mode', MODES)
def test_runner_ending_the_job_leaves_nothing(tmp_path, run_tmpdir, ssh_env, sshd_alive, mode, how):
    """Runner ends the job while both hosts run a long sleep: through its
    cancel callback, or when its job timeout expires."""
    private, envvars, inventory = _job(tmp_path, run_tmpdir, ssh_env, mode)
    # A sleep length unique to this case, to recognise its task processes.
    case = MODES.index(mode) * 2 + (how == 'timeout')
    sleep_for = '300.%d' % (os.getpid() % 1000 * 10 + case)
    seen: dict = {}

    def in_the_sleep() -> bool:
        """Runner's cancel callback: snapshot the run once both sleeps run;
        cancel then, if this case cancels."""
        if not seen:
            users = {user for user, cmd in processes().values() if cmd == f'sleep {sleep_for}'}
            if {'svc-login', 'root'} <= users:
                seen.update(_snapshot(run_tmpdir, sleep_for))
        return bool(seen) and how == 'cancel'

    kwargs = {'timeout': JOB_TIMEOUT} if how == 'timeout' else {}
    try:
        r = _run(private, envvars, inventory, extravars={'sleep_for': sleep_for}, cancel_callback=in_the_sleep,
                 **kwargs)
        ended = time.monotonic()
        out = _output(r)
        assert seen, f'the job ended before both hosts ran their sleep:\n{out}'
        assert (r.status, r.rc) == (('canceled' if how == 'cancel' else 'timeout'), 254), out
        assert _kinds(seen) == {'mux', 'ssh interpreter', 'root interpreter', 'sleep as svc-login', 'sleep as root'}, (
            _fmt(seen))
        # A local interpreter and the target's become interpreter.
        assert sum(1 for user, cmd, _ in seen.values() if user == 'root' and cmd.endswith(f'({ACCELERATED})')) >= 2, (
            _fmt(seen))
        ok = _events(r, 'runner_on_ok')
        _assert_accelerated(ok, out)
        assert ok[('target', 'become')]['res']['stdout'] == 'root', out
        assert {('target', 'sleep'), ('local', 'sleep')} <= set(_events(r, 'runner_on_start')), out
        ended_tasks = {**ok, **_events(r, 'runner_on_failed'), **_events(r, 'runner_on_unreachable')}
        assert not [key for key in ended_tasks if key[1] in ('sleep', 'after')], out

        left, dirs = _wait_no_run_leftovers(run_tmpdir, private, seen)
        assert not left, f'left {LEFTOVER_BOUND}s after runner ended the job ({how}):\n{_fmt(left)}'
        assert not dirs, f'mux directory left after {how}: {dirs}'
        print(f'{mode} {how}: {len(seen)} processes of the run, all gone '
              f'{time.monotonic() - ended:.2f}s after runner returned')
    finally:
        doomed = set(_alive(seen)) | set(_run_leftovers(run_tmpdir, private))
        doomed |= {pid for pid, (_, cmd) in processes().items() if cmd == f'sleep {sleep_for}'}
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
