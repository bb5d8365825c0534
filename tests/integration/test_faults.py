"""Faults end cleanly, with vanilla's outcomes (issue 12).

Each test breaks something in the middle of a real run (the mux, the target
interpreter) and asserts the outcome Ansible reports, that the run ends by
itself, and what is left behind.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time

import pytest

from helpers import (PrivateSshd, inventory_for, new_svc_processes_after, prepare_playbook, processes, read_results,
                     run_playbook, svc_processes, wait_while_running)

# Faults of our own processes: no ansible-core code takes part (see conftest.py).
pytestmark = pytest.mark.newest_core_only

FAULT_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: long
      command: sleep {{ sleep_for }}
      ignore_unreachable: true
    - name: after
      command: id -un
      ignore_unreachable: true
"""


def _wait_for(pred, what, proc, timeout=60):
    """Pids of the processes (user, command line) that `pred` picks, once
    there are any."""
    return wait_while_running(proc, lambda: [pid for pid, (user, cmd) in processes().items() if pred(user, cmd)],
                              what, timeout)


@pytest.mark.parametrize('victim', ['mux', 'interpreter'])
def test_a_process_killed_mid_task_makes_the_host_unreachable(ssh_env, sshd_alive, tmp_path, victim):
    before = svc_processes()
    private_tmp = tmp_path / 'tmpdir'
    private_tmp.mkdir()
    sleep_for = '40.%d' % (os.getpid() % 1000 * 10 + (victim == 'mux'))
    cmd, env, results_file = prepare_playbook(FAULT_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env),
                                              extra_vars={'sleep_for': sleep_for}, env={'TMPDIR': str(private_tmp)})
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for(lambda user, cmd: cmd == f'sleep {sleep_for}', 'sleep task', proc)
        if victim == 'mux':
            pids = _wait_for(lambda user, cmd: 'ansible_svc.mux' in cmd and str(private_tmp) in cmd, 'mux', proc)
        else:
            pids = _wait_for(lambda user, cmd: user == 'svc-login' and 'mitogen:ansible-svc' in cmd, 'interpreter', proc)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f'the run did not end within 60 s of the {victim} being killed')
        results, _ = read_results(results_file)
        outcome = {r['task']: r for r in results}
        assert outcome['long']['status'] == 'unreachable', out
        if victim == 'mux':
            assert 'mux' in outcome['long']['result']['msg']
            assert outcome['after']['status'] == 'unreachable', out
            assert 'cannot reach the ansible-svc mux' in outcome['after']['result']['msg']
        else:
            # A new interpreter takes over, as vanilla's next ssh would.
            assert outcome['after']['status'] == 'changed' and outcome['after']['result']['stdout'] == 'svc-login'
        left = new_svc_processes_after(before, timeout=15)
        assert not left, left
        assert not list(private_tmp.glob('ansible-svc-*')), list(private_tmp.iterdir())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Ansible's workers run in sessions of their own: on a failure they
        # may be left waiting, and only this ends them.
        for pid, (_, cmd) in processes().items():
            if cmd == f'sleep {sleep_for}' or str(tmp_path) in cmd:
                os.kill(pid, signal.SIGKILL)


BACKGROUND_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: raw with a background child
      raw: sleep {{ sleep_for }} & echo started
"""


@pytest.mark.parametrize('use_tty', [False, True])
def test_a_background_child_does_not_hold_the_task(ssh_env, sshd_alive, tmp_path, use_tty):
    """A command (raw, script, old-style modules) ends when its shell does:
    on pipes (``use_tty: false``) the run is over while the backgrounded
    sleep, holding the command's stdout, still runs (vanilla's ssh would
    wait for it); on a terminal (vanilla's ``ssh -tt``, the default) the
    sleep is hung up with the shell, as in vanilla."""
    sleep_for = '60.%d' % (os.getpid() % 1000 * 10 + 7)
    inventory = inventory_for(ssh_env, extra=f'ansible_ssh_use_tty={use_tty}')
    try:
        survivors = {}
        for strategy in ('linear', 'svc_linear') if use_tty else ('svc_linear',):
            run = run_playbook(BACKGROUND_PB, tmp_path=tmp_path / strategy, inventory=inventory, strategy=strategy,
                               extra_vars={'sleep_for': sleep_for}, timeout=50).assert_ok()
            assert run.task('raw with a background child', 'target')['result']['stdout'].strip() == 'started'
            survivors[strategy] = [pid for pid, (_, cmd) in processes().items() if cmd == f'sleep {sleep_for}']
            for pid in survivors[strategy]:
                os.kill(pid, signal.SIGKILL)
        assert len(survivors['svc_linear']) == (0 if use_tty else 1), survivors
        assert survivors.get('linear', []) == [], survivors
    finally:
        for pid, (_, cmd) in processes().items():
            if cmd == f'sleep {sleep_for}':
                os.kill(pid, signal.SIGKILL)


MUX_KILL_BETWEEN_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: first
      command: id -un
    - name: kill the mux between tasks
      # A lookup runs in the worker, on the controller: no connection used.
      debug:
        msg: "{{ lookup('pipe', 'pkill -KILL -f \\"[a]nsible_svc.mux --socket ' ~ tmpdir ~ '\\"; echo killed') }}"
    - name: after
      command: id -un
      ignore_unreachable: true
    - name: later
      command: id -un
      ignore_unreachable: true
"""


def test_a_mux_killed_between_tasks_makes_the_rest_unreachable(ssh_env, sshd_alive, tmp_path):
    """The next tasks end promptly as UNREACHABLE and say why; nothing of
    the run is left."""
    before = svc_processes()
    private_tmp = tmp_path / 'tmpdir'
    private_tmp.mkdir()
    run = run_playbook(MUX_KILL_BETWEEN_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env),
                       extra_vars={'tmpdir': str(private_tmp)}, env={'TMPDIR': str(private_tmp)}, timeout=120)
    assert run.task('first')['status'] == 'changed', run.output
    assert run.task('kill the mux between tasks')['result']['msg'] == 'killed'
    for task in ('after', 'later'):
        assert run.task(task)['status'] == 'unreachable', run.output
        assert 'cannot reach the ansible-svc mux' in run.task(task)['result']['msg'], run.task(task)
    assert not new_svc_processes_after(before, timeout=15)
    assert not list(private_tmp.glob('ansible-svc-*')), list(private_tmp.iterdir())


SSHD_STOP_PB = """
- hosts: a
  gather_facts: false
  tasks:
    - name: before the stop
      command: id -un
- hosts: local
  gather_facts: false
  tasks:
    - name: stop sshd
      command: kill {{ sshd_pid }}
- hosts: a,b
  gather_facts: false
  tasks:
    - name: after the stop
      command: id -un
      ignore_unreachable: true
"""


@pytest.mark.parametrize('strategy', ['linear', 'svc_linear'])
def test_sshd_stopped_mid_run(ssh_env, sshd_alive, tmp_path, strategy):
    """As after ``systemctl stop ssh``: a login already made goes on (vanilla
    keeps its ControlMaster, we our interpreter); a new login is UNREACHABLE,
    saying why. Vanilla (linear) and ansible-svc alike."""
    sshd = PrivateSshd(ssh_env, tmp_path / 'sshd')
    common = (f"ansible_host={sshd.address} ansible_port={sshd.port} ansible_python_interpreter=/usr/bin/python3 "
              f"ansible_ssh_private_key_file={ssh_env['key']} "
              f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd.known_hosts}'")
    inventory = (f"a {common} ansible_user=svc-login\nb {common} ansible_user={ssh_env['users']['target']}\n"
                 'local ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n')
    try:
        run = run_playbook(SSHD_STOP_PB, tmp_path=tmp_path, inventory=inventory, strategy=strategy,
                           extra_vars={'sshd_pid': sshd.proc.pid}, timeout=120)
    finally:
        sshd.stop()
    assert run.task('before the stop', 'a')['result']['stdout'] == 'svc-login', run.output
    assert run.task('stop sshd', 'local')['status'] == 'changed', run.output
    assert run.task('after the stop', 'a')['result']['stdout'] == 'svc-login', run.output
    lost = run.task('after the stop', 'b')
    assert lost['status'] == 'unreachable', run.output
    assert 'Connection refused' in lost['result']['msg'], lost


HOST_LOSS_PB = """
- hosts: lost
  gather_facts: false
  tasks:
    - name: before
      command: id -un
    - name: long
      command: sleep {{ sleep_for }}
      ignore_unreachable: true
    - name: after
      command: id -un
      ignore_unreachable: true
"""


_NETNS_SERIAL = itertools.count()


@pytest.fixture
def netns_host(ssh_env, tmp_path):
    """A host in a network namespace of its own, reached over a veth pair,
    with an sshd; yields (sshd, a function that cuts the host off)."""
    # Unique per use: a deleted namespace's veth pair goes asynchronously.
    serial = next(_NETNS_SERIAL)
    tag = f'{os.getpid() % 10000}x{serial}'
    ns, host_if, ns_if = f'svc-loss-{tag}', f'svch{tag}', f'svct{tag}'
    prefix = f'10.{200 + serial % 50}.{os.getpid() % 250}'

    def ip(*args, check=True):
        return subprocess.run(['ip', *args], check=check, capture_output=True, text=True)

    ip('netns', 'add', ns)
    sshd = None
    try:
        ip('link', 'add', host_if, 'type', 'veth', 'peer', 'name', ns_if, 'netns', ns)
        ip('addr', 'add', f'{prefix}.1/30', 'dev', host_if)
        ip('link', 'set', host_if, 'up')
        ip('-n', ns, 'addr', 'add', f'{prefix}.2/30', 'dev', ns_if)
        ip('-n', ns, 'link', 'set', ns_if, 'up')
        ip('-n', ns, 'link', 'set', 'lo', 'up')
        sshd = PrivateSshd(ssh_env, tmp_path / 'sshd', address=f'{prefix}.2', port=22, netns=ns)
        # Off the wire, as a host that lost power: packets go out, none return.
        yield sshd, lambda: ip('-n', ns, 'link', 'set', ns_if, 'down')
    finally:
        if sshd is not None:
            sshd.stop()
        for pid in ip('netns', 'pids', ns, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        ip('link', 'delete', host_if, check=False)  # and its peer
        ip('netns', 'delete', ns, check=False)


@pytest.mark.parametrize('strategy', ['linear', 'svc_linear'])
def test_a_host_lost_mid_task_is_unreachable(ssh_env, netns_host, tmp_path, strategy):
    """A host that drops off the network during a task: with the user's ssh
    keepalive settings honoured, the task and the next are UNREACHABLE as
    under vanilla, and the run ends by itself."""
    sshd, cut_off = netns_host
    (tmp_path / 'tmpdir').mkdir()
    sleep_for = '50.%d' % (os.getpid() % 1000 * 10 + (strategy == 'svc_linear'))
    inventory = (f"lost ansible_host={sshd.address} ansible_user=svc-login ansible_python_interpreter=/usr/bin/python3 "
                 f"ansible_ssh_private_key_file={ssh_env['key']} ansible_timeout=5 "
                 f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd.known_hosts} "
                 "-o ServerAliveInterval=1 -o ServerAliveCountMax=3'\n")
    cmd, env, results_file = prepare_playbook(HOST_LOSS_PB, tmp_path=tmp_path, inventory=inventory, strategy=strategy,
                                              extra_vars={'sleep_for': sleep_for},
                                              env={'TMPDIR': str(tmp_path / 'tmpdir')})
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for(lambda user, cmd: cmd == f'sleep {sleep_for}', 'sleep task', proc)
        cut_off()
        try:
            # The keepalives notice in ~3 s, the next login gives up after
            # 5 s; mitogen's own keepalive (45 s) would overrun this bound.
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail('the run did not end within 30 s of the host being cut off')
        outcome = {r['task']: r for r in read_results(results_file)[0]}
        assert outcome['before']['result']['stdout'] == 'svc-login', out
        assert outcome['long']['status'] == 'unreachable', out
        assert outcome['after']['status'] == 'unreachable', out
        # Nothing of the run is left on the controller: workers (their argv
        # names the inventory) and the mux (its socket is in the TMPDIR).
        # The lost host keeps its processes, as it would keep vanilla's
        # module; the fixture ends them.
        marks = (str(tmp_path / 'inventory.ini'), str(tmp_path / 'tmpdir'))

        def run_left():
            return [c for _, c in processes().values() if any(mark in c for mark in marks)]
        deadline = time.monotonic() + 15
        while run_left() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not run_left()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
