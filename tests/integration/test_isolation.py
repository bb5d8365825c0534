"""Isolation and crash tests: a task cannot leave state behind for the next
task, cannot hurt the long-lived target interpreter, and modules that
re-execute themselves work.

Every playbook runs on `target` (ssh, as svc-login) and `local`, once under
vanilla `linear` (a fresh process per task) and once under `svc_linear`
with its default task isolation (each module forked from a long-lived
interpreter; ANSIBLE_SVC_TASK_ISOLATION in the environment would change
that). The test modules live in isolation_library/.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from pathlib import Path

import pytest

from helpers import inventory_for, normalize, processes, run_playbook

pytestmark = pytest.mark.newest_core_only

LIBRARY = Path(__file__).resolve().parent / 'isolation_library'
ENV = {'ANSIBLE_LIBRARY': str(LIBRARY)}
HOSTS = ('target', 'local')
STRATEGIES = ('linear', 'svc_linear')
#: Who the modules run as on each host.
USERS = {'target': 'svc-login', 'local': 'root'}


def _run_both(base: Path, playbook: str, ssh_env: dict, extra_vars_for, timeout: float = 300,
              after=None) -> dict:
    """Run one playbook file under both strategies from the same directory
    (on `local`, modules run in the playbook's directory). `after(strategy)`
    is called after each run."""
    pb_file = base / 'playbook.yml'
    pb_file.write_text(playbook)
    runs = {}
    for strategy in STRATEGIES:
        runs[strategy] = run_playbook(pb_file, tmp_path=base / strategy, strategy=strategy,
                                      inventory=inventory_for(ssh_env), env=ENV,
                                      extra_vars=extra_vars_for(strategy), cwd=base, timeout=timeout)
        if after is not None:
            after(strategy)
    return runs


def _shared_dir(prefix: str) -> Path:
    """A world-writable dir in /tmp, so that svc-login's modules can write there."""
    path = Path(f'/tmp/{prefix}-{secrets.token_hex(4)}')
    path.mkdir(mode=0o1777)
    os.chmod(path, 0o1777)
    return path


def _res(run, task, host):
    return run.task(task, host)


def _dump(value) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def _diff_results(a, b):
    ra, rb = normalize(a['result']), normalize(b['result'])
    got = {}
    if a['status'] != b['status']:
        got['status'] = {'vanilla': a['status'], 'svc': b['status']}
    for key in sorted(set(ra) | set(rb)):
        if ra.get(key) != rb.get(key):
            got[key] = {'vanilla': ra.get(key), 'svc': rb.get(key)}
    return got


def _fmt_diff(got: dict) -> str:
    """{key: {'vanilla': a, 'svc': b}} as two compact lines per key."""
    out = []
    for key, pair in got.items():
        out.append(f'{key}:')
        for side, value in pair.items():
            out.append(f'  {side + ":":9}{json.dumps(value, sort_keys=True, default=str)}')
    return '\n'.join(out)


# -----------------------------------------------------------------------------
# 1. No state reaches the next task
# -----------------------------------------------------------------------------

STATE_PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    mdir: "{{ marker_root }}/{{ inventory_hostname }}"
  tasks:
    - name: probe before
      iso_probe: marker_dir="{{ mdir }}"
    - name: mutate
      iso_mutate: marker_dir="{{ mdir }}"
    - name: probe after
      iso_probe: marker_dir="{{ mdir }}"
    - name: command after
      command: sh -c 'umask; pwd; echo "${SVC_ISO_LEAK-unset}"'
    - name: probe again
      iso_probe: marker_dir="{{ mdir }}"
"""

#: What iso_mutate reports it did (the same under both strategies).
MUTATED = {
    'basic_attr': True,
    'converters_patched': True,
    'fake_module_in_sys_modules': True,
    'fake_path_in_sys_path': True,
    'cwd': '/',
    'env_leak': 'leaked',
    'umask': '0o77',
    'sigusr1_is_handler': True,
    'sigusr2': 'SIG_IGN',
    'atexit_registered': True,
    'thread_alive': True,
    'fd_left_open': True,
    'warnings_first_filter': ['ignore', 'svc-iso-marker'],
}

#: Probe fields that describe what a previous task left in the process
#: itself (as opposed to files it left on disk, which persist in vanilla too).
PROCESS_STATE_FIELDS = ('basic_attr', 'converters_patched', 'fake_module_in_sys_modules', 'fake_path_in_sys_path',
                        'cwd', 'env_leak', 'umask', 'signal_handlers', 'signals_blocked', 'signals_ignored',
                        'open_fd_count', 'extra_fds', 'threads', 'warnings_filters')


@pytest.fixture(scope='module')
def state_runs(ssh_env, sshd_alive, tmp_path_factory):
    base = tmp_path_factory.mktemp('iso-state')
    os.chmod(base, 0o755)
    # One marker dir for both runs (module arguments must be the same),
    # emptied after each.
    markers = _shared_dir('svc-iso-state')
    files = {}

    def collect(strategy):
        # Give anything still running (a lingering thread, an interpreter
        # exiting) a moment to write its markers, then read and remove them.
        time.sleep(3)
        for host in HOSTS:
            d = markers / host
            files[(strategy, host)] = {p.name: p.read_text() for p in d.iterdir()} if d.is_dir() else {}
            shutil.rmtree(d, ignore_errors=True)

    try:
        runs = _run_both(base, STATE_PLAYBOOK, ssh_env, lambda s: {'marker_root': str(markers)}, after=collect)
    finally:
        shutil.rmtree(markers, ignore_errors=True)
    return dict(runs=runs, files=files)


def test_state_vanilla_run_is_sane(state_runs):
    van = state_runs['runs']['linear']
    van.assert_ok()
    for host in HOSTS:
        assert _res(van, 'mutate', host)['result']['did'] == MUTATED, _dump(_res(van, 'mutate', host))
        before = _res(van, 'probe before', host)['result']
        assert before['basic_attr'] is False and before['env_leak'] is None, before
        assert before['signal_handlers']['SIGUSR1'] == 'SIG_DFL', before


@pytest.mark.parametrize('host', HOSTS)
def test_mutation_took_effect_under_svc(state_runs, host):
    # Guards the isolation checks: the mutating module really ran and did
    # everything it claims, inside the svc_linear module process.
    svc = state_runs['runs']['svc_linear']
    svc.assert_ok()
    res = _res(svc, 'mutate', host)
    assert res['status'] == 'changed', _dump(res)
    assert res['result']['did'] == MUTATED, _dump(res['result'])


@pytest.mark.parametrize('host', HOSTS)
def test_no_process_state_reaches_next_task(state_runs, host):
    # Within the svc run: the module after the polluter starts from exactly
    # the state the module before it started from.
    svc = state_runs['runs']['svc_linear']
    before = _res(svc, 'probe before', host)['result']
    for task in ('probe after', 'probe again'):
        after = _res(svc, task, host)['result']
        diff = {k: {'before': before.get(k), 'after': after.get(k)}
                for k in PROCESS_STATE_FIELDS if before.get(k) != after.get(k)}
        assert not diff, f'{host}: state leaked from `mutate` into `{task}`:\n{_fmt_diff(diff)}'
    cmd = _res(svc, 'command after', host)['result']
    umask, cwd, env = cmd['stdout'].splitlines()
    assert (umask, cwd, env) == (before['umask'], before['cwd'], 'unset'), cmd


@pytest.mark.parametrize('task', ('probe before', 'mutate', 'probe after', 'command after', 'probe again'))
@pytest.mark.parametrize('host', HOSTS)
def test_state_results_match_vanilla(state_runs, host, task):
    van, svc = state_runs['runs']['linear'], state_runs['runs']['svc_linear']
    a, b = _res(van, task, host), _res(svc, task, host)
    got = _diff_results(a, b)
    assert not got, f'{task} on {host}: svc_linear differs from linear:\n{_fmt_diff(got)}'


@pytest.mark.parametrize('host', HOSTS)
def test_atexit_handler_runs_once_like_vanilla(state_runs, host):
    # Vanilla runs atexit handlers when the module process exits: exactly one
    # line, written before the next task. Under svc it must be the same
    # (not skipped, and not run again when a later task or the long-lived
    # interpreter exits).
    files = state_runs['files']
    van, svc = files[('linear', host)], files[('svc_linear', host)]
    assert van.get('atexit') == 'atexit ran\n', van
    assert svc.get('atexit') == van.get('atexit'), f'{host}: atexit marker: vanilla {van!r}, svc {svc!r}'
    runs = state_runs['runs']
    for strategy in STRATEGIES:
        assert _res(runs[strategy], 'probe after', host)['result']['atexit_marker_lines'] == 1, strategy


@pytest.mark.parametrize('host', HOSTS)
def test_non_daemon_thread_finishes_like_vanilla(state_runs, host):
    # A Python process exits only after its non-daemon threads end: in
    # vanilla the module's sleeping thread finishes (and writes its marker)
    # before the task's result is returned.
    files = state_runs['files']
    van, svc = files[('linear', host)], files[('svc_linear', host)]
    assert van.get('thread-done') == 'thread finished\n', van
    assert svc.get('thread-done') == van.get('thread-done'), (
        f'{host}: thread marker after the run: vanilla {van.get("thread-done")!r}, svc {svc.get("thread-done")!r}')
    runs = state_runs['runs']
    seen = {s: _res(runs[s], 'probe after', host)['result']['thread_marker_exists'] for s in STRATEGIES}
    assert seen['svc_linear'] == seen['linear'] is True, seen


# -----------------------------------------------------------------------------
# 2. A module cannot hurt the interpreter
# -----------------------------------------------------------------------------

#: Prints the module process's command line, the pid of its parent (for
#: svc_linear: the long-lived interpreter) and that parent's command line.
INTERPRETER_SHELL = r"""
      shell: |
        gp=$(sed 's/.*) //' /proc/$PPID/stat | cut -d' ' -f2)
        printf '%s\n' "$(tr '\0' ' ' < /proc/$PPID/cmdline)" "$gp" "$(tr '\0' ' ' < /proc/$gp/cmdline)"
"""

CRASHES = ('exit3', 'segv', 'sysexit_text', 'sysexit_none', 'sysexit_list', 'sysexit_256')


def _after_tasks(label: str, timeout: int) -> str:
    return f"""
    - name: ping after {label}
      ping:
      timeout: {timeout}
      ignore_errors: true
    - name: id after {label}
      command: id -un
      timeout: {timeout}
      ignore_errors: true
    - name: interpreter after {label}{INTERPRETER_SHELL}      timeout: {timeout}
      ignore_errors: true
"""


def _crash_playbook() -> str:
    pb = f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: interpreter before{INTERPRETER_SHELL}"""
    for mode in CRASHES:
        pb += f"""
    - name: crash {mode}
      iso_crash: mode={mode}
      ignore_errors: true
""" + _after_tasks(mode, 30)
    return pb


@pytest.fixture(scope='module')
def crash_runs(ssh_env, sshd_alive, tmp_path_factory):
    base = tmp_path_factory.mktemp('iso-crash')
    os.chmod(base, 0o755)
    return _run_both(base, _crash_playbook(), ssh_env, lambda s: {})


def _interpreter(run, task, host):
    """(module cmdline, interpreter pid, interpreter cmdline) from an interpreter task."""
    res = run.task(task, host)
    assert res['status'] in ('ok', 'changed'), _dump(res)
    lines = res['result']['stdout'].split('\n')
    assert len(lines) == 3, res
    return lines[0], int(lines[1]), lines[2]


def _check_next_tasks_work(run, label, host):
    problems = []
    ping = run.task(f'ping after {label}', host)
    if ping['status'] != 'ok' or ping['result'].get('ping') != 'pong':
        problems.append(f'ping after {label}: {_dump(ping)}')
    ident = run.task(f'id after {label}', host)
    if ident['status'] not in ('ok', 'changed') or ident['result'].get('stdout') != USERS[host]:
        problems.append(f'id after {label}: {_dump(ident)}')
    return problems


def _check_same_interpreter(run, label, host):
    mod_before, pid_before, cmd_before = _interpreter(run, 'interpreter before', host)
    assert 'mitogen:ansible-svc' in mod_before and 'mitogen:ansible-svc' in cmd_before, (mod_before, cmd_before)
    res = run.task(f'interpreter after {label}', host)
    assert res['status'] in ('ok', 'changed'), f'interpreter after {label} on {host}: {_dump(res)}'
    mod_after, pid_after, cmd_after = _interpreter(run, f'interpreter after {label}', host)
    assert 'mitogen:ansible-svc' in mod_after, mod_after
    assert pid_after == pid_before, (
        f'{host}: the interpreter changed after {label}: {pid_before} ({cmd_before}) -> {pid_after} ({cmd_after})')


def test_crash_vanilla_run_is_sane(crash_runs):
    van = crash_runs['linear']
    for host in HOSTS:
        for mode in CRASHES:
            assert van.task(f'crash {mode}', host)['status'] == 'failed', van.output
            assert not _check_next_tasks_work(van, mode, host)
        assert 'mitogen' not in _interpreter(van, 'interpreter before', host)[2]


@pytest.mark.parametrize('mode', CRASHES)
@pytest.mark.parametrize('host', HOSTS)
def test_crash_fails_the_task_like_vanilla(crash_runs, host, mode):
    van = crash_runs['linear'].task(f'crash {mode}', host)
    svc = crash_runs['svc_linear'].task(f'crash {mode}', host)
    assert svc['status'] == van['status'] == 'failed', f'vanilla: {_dump(van)}\nsvc: {_dump(svc)}'
    res = svc['result']
    msg = res.get('msg') or ''
    assert msg.strip(), _dump(svc)
    # The same kind of failure as vanilla (a module that returned no valid
    # result), not an error of ansible-svc's own plumbing.
    assert msg == van['result'].get('msg'), f'vanilla: {_dump(van)}\nsvc: {_dump(svc)}'
    assert 'ansible-svc' not in msg and 'Traceback' not in msg, _dump(svc)
    # What the module left says what happened.
    rc, stderr = res.get('rc'), res.get('module_stderr') or ''
    expected = {
        'exit3': lambda: rc == 3 and res.get('module_stdout') == '{"partial": ',
        'segv': lambda: rc in (139, -11) or 'Segmentation fault' in stderr or 'SIGSEGV' in stderr,
        'sysexit_text': lambda: rc == 1 and 'svc-iso: exiting with a text argument' in stderr,
        'sysexit_none': lambda: rc == 0,
        'sysexit_list': lambda: rc == 1 and '[1, 2]' in stderr,
        'sysexit_256': lambda: rc == 0,
    }[mode]
    assert expected(), _dump(svc)


@pytest.mark.parametrize('mode', CRASHES)
@pytest.mark.parametrize('host', HOSTS)
def test_crash_result_details_match_vanilla(crash_runs, host, mode):
    # Exit status and output the module left, as Ansible reports them.
    got = {}
    for strategy in STRATEGIES:
        res = crash_runs[strategy].task(f'crash {mode}', host)['result']
        got[strategy] = {k: normalize(res.get(k)) for k in ('rc', 'msg', 'module_stdout', 'module_stderr')}
    assert got['svc_linear'] == got['linear'], f'{mode} on {host}:\n{_dump(got)}'


@pytest.mark.parametrize('mode', CRASHES)
@pytest.mark.parametrize('host', HOSTS)
def test_next_tasks_work_after_crash(crash_runs, host, mode):
    problems = _check_next_tasks_work(crash_runs['svc_linear'], mode, host)
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('mode', CRASHES)
@pytest.mark.parametrize('host', HOSTS)
def test_same_interpreter_after_crash(crash_runs, host, mode):
    _check_same_interpreter(crash_runs['svc_linear'], mode, host)


# --- the hanging module ------------------------------------------------------

HANG_PLAYBOOK = f"""
- hosts: all
  gather_facts: false
  vars:
    marker: "{{{{ marker_base }}}}-{{{{ inventory_hostname[0] }}}}"
  tasks:
    - name: interpreter before{INTERPRETER_SHELL}
    - name: hang
      iso_crash: mode=hang marker="{{{{ marker }}}}"
      timeout: 3
      ignore_errors: true
""" + _after_tasks('hang', 20) + """
    - name: processes of the hung task
      iso_findproc: marker="{{ marker }}" wait={{ findproc_wait }}
      timeout: 30
      ignore_errors: true
    - name: hang ignoring SIGHUP
      iso_crash: mode=hang_nohup marker="{{ marker }}n"
      timeout: 3
      ignore_errors: true
""" + _after_tasks('hang ignoring SIGHUP', 20) + """
    - name: processes of the hung task ignoring SIGHUP
      iso_findproc: marker="{{ marker }}n" wait={{ findproc_wait }}
      timeout: 30
      ignore_errors: true
"""

HANGS = ('hang', 'hang ignoring SIGHUP')


def _marked(markers) -> dict:
    """{pid: (user, cmdline)} of live processes carrying one of `markers`
    (in the command line, or as comm), with their descendants."""
    procs = processes()
    tree = {}
    hits = set()
    for pid, (user, cmd) in procs.items():
        try:
            stat = Path(f'/proc/{pid}/stat').read_text()
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        tree[pid] = int(stat[stat.rindex(')') + 2:].split()[1])
        if any(m in cmd or comm == m[:15] for m in markers):
            hits.add(pid)
    grown = True
    while grown:
        children = {pid for pid, ppid in tree.items() if ppid in hits} - hits
        grown = bool(children)
        hits |= children
    return {pid: procs[pid] for pid in hits if pid in procs}


@pytest.fixture(scope='module')
def hang_runs(ssh_env, sshd_alive, tmp_path_factory):
    base = tmp_path_factory.mktemp('iso-hang')
    os.chmod(base, 0o755)
    bases = {s: 'si' + secrets.token_hex(5) for s in STRATEGIES}

    def markers(strategy, host):
        # Both hung tasks' markers (see HANG_PLAYBOOK).
        m = f'{bases[strategy]}-{host[0]}'
        return (m, m + 'n')

    left = {}
    try:
        # Only ansible-svc's leftovers are asserted on (vanilla's hung
        # modules may live on): only they are waited for.
        runs = _run_both(base, HANG_PLAYBOOK, ssh_env,
                         lambda s: {'marker_base': bases[s], 'findproc_wait': 10 if s == 'svc_linear' else 0},
                         timeout=400)
        for strategy in ('svc_linear',):
            left[strategy] = {}
            for host in HOSTS:
                deadline = time.monotonic() + 15
                while True:
                    found = _marked(markers(strategy, host))
                    if not found or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                left[strategy][host] = found
                print(f'hang leftovers {strategy} {host}: {found}')
    finally:
        # Whatever this test's hung modules left behind is ours to end.
        for strategy in STRATEGIES:
            for host in HOSTS:
                for pid in _marked(markers(strategy, host)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
    return dict(runs=runs, left=left)


@pytest.mark.parametrize('task', HANGS)
@pytest.mark.parametrize('host', HOSTS)
def test_hang_times_out_like_vanilla(hang_runs, host, task):
    van = hang_runs['runs']['linear'].task(task, host)
    svc = hang_runs['runs']['svc_linear'].task(task, host)
    assert svc['status'] == van['status'] == 'failed', f'vanilla: {_dump(van)}\nsvc: {_dump(svc)}'
    assert 'timedout' in van['result'], _dump(van)
    assert svc['result'].get('timedout') == van['result'].get('timedout'), f'vanilla: {_dump(van)}\nsvc: {_dump(svc)}'
    assert normalize(svc['result'].get('msg')) == normalize(van['result'].get('msg'))


@pytest.mark.parametrize('task', HANGS)
@pytest.mark.parametrize('host', HOSTS)
def test_hang_vanilla_next_tasks_work(hang_runs, host, task):
    problems = _check_next_tasks_work(hang_runs['runs']['linear'], task, host)
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('task', HANGS)
@pytest.mark.parametrize('host', HOSTS)
def test_next_tasks_work_after_hang(hang_runs, host, task):
    problems = _check_next_tasks_work(hang_runs['runs']['svc_linear'], task, host)
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('task', HANGS)
@pytest.mark.parametrize('host', HOSTS)
def test_same_interpreter_after_hang(hang_runs, host, task):
    _check_same_interpreter(hang_runs['runs']['svc_linear'], task, host)


@pytest.mark.parametrize('task', HANGS)
@pytest.mark.parametrize('host', HOSTS)
def test_hung_module_is_gone_during_the_run(hang_runs, host, task):
    # Seen from the host itself, a few tasks after the timeout: neither the
    # module process nor the `sleep` it started may still run.
    res = hang_runs['runs']['svc_linear'].task(f'processes of the hung task{task[4:]}', host)
    assert res['status'] == 'ok', _dump(res)
    assert res['result']['processes'] == [], _dump(res['result']['processes'])


@pytest.mark.parametrize('host', HOSTS)
def test_hung_modules_are_gone_after_the_run(hang_runs, host):
    left = hang_runs['left']['svc_linear'][host]
    assert not left, '\n'.join(f'{pid} {user}: {cmd}' for pid, (user, cmd) in sorted(left.items()))


# -----------------------------------------------------------------------------
# 3. Modules that re-execute themselves
# -----------------------------------------------------------------------------

RESPAWN_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: plain
      iso_respawn: mode=plain data="ü [x]"
    - name: respawn
      iso_respawn: mode=respawn data="ü [x]"
    - name: respawn other spelling
      iso_respawn: mode=respawn interpreter=python3 data="second"
    - name: respawn twice
      iso_respawn: mode=twice
      ignore_errors: true
    - name: respawn again
      iso_respawn: mode=respawn data="third"
    - name: delete own module_utils zip
      iso_respawn: mode=delete_modlib
    - name: respawn after a task deleted its zip
      iso_respawn: mode=respawn data="fourth"
      ignore_errors: true
"""

RESPAWN_TASKS = ('respawn', 'respawn other spelling', 'respawn twice', 'respawn again')


@pytest.fixture(scope='module')
def respawn_runs(ssh_env, sshd_alive, tmp_path_factory):
    base = tmp_path_factory.mktemp('iso-respawn')
    os.chmod(base, 0o755)
    return _run_both(base, RESPAWN_PLAYBOOK, ssh_env, lambda s: {})


def test_respawn_vanilla_run_is_sane(respawn_runs):
    van = respawn_runs['linear']
    for host in HOSTS:
        res = van.task('respawn', host)
        assert res['status'] == 'ok' and res['result']['respawned'] is True, _dump(res)
        assert res['result']['data'] == 'ü [x]'
        assert van.task('respawn twice', host)['status'] == 'failed'
        assert van.task('respawn after a task deleted its zip', host)['status'] == 'ok'


@pytest.mark.parametrize('task', RESPAWN_TASKS)
@pytest.mark.parametrize('host', HOSTS)
def test_respawn_matches_vanilla(respawn_runs, host, task):
    a, b = respawn_runs['linear'].task(task, host), respawn_runs['svc_linear'].task(task, host)
    got = _diff_results(a, b)
    assert not got, f'{task} on {host}: svc_linear differs from linear:\n{_fmt_diff(got)}'
    if task == 'respawn':
        assert b['result']['respawned'] is True and b['result']['data'] == 'ü [x]', _dump(b)


@pytest.mark.parametrize('host', HOSTS)
def test_plain_module_sees_the_same_as_vanilla(respawn_runs, host):
    # Control for the respawn cases: the same module without respawning
    # (executable, argv, __main__, the zip first on sys.path).
    a, b = respawn_runs['linear'].task('plain', host), respawn_runs['svc_linear'].task('plain', host)
    got = _diff_results(a, b)
    assert not got, f'plain on {host}: svc_linear differs from linear:\n{_fmt_diff(got)}'


@pytest.mark.parametrize('host', HOSTS)
def test_respawn_after_a_task_deleted_its_zip(respawn_runs, host):
    # In vanilla every task gets its own copy of the module_utils zip. A task
    # that removes its copy must not break a later task of the same module.
    for task in ('delete own module_utils zip', 'respawn after a task deleted its zip'):
        a, b = respawn_runs['linear'].task(task, host), respawn_runs['svc_linear'].task(task, host)
        got = _diff_results(a, b)
        assert not got, f'{task} on {host}: svc_linear differs from linear:\n{_fmt_diff(got)}'
