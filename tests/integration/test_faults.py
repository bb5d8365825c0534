"""Faults end cleanly, with vanilla's outcomes (issue 12).

Each test breaks something in the middle of a real run (the mux, the target
interpreter) and asserts the outcome Ansible reports, that the run ends by
itself, and what is left behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from helpers import (inventory_for, new_svc_processes_after, prepare_playbook, processes, read_results, run_playbook,
                     svc_processes)

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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [pid for pid, (user, cmd) in processes().items() if pred(user, cmd)]
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f'ansible-playbook exited before {what}:\n{proc.stdout.read()}')
        time.sleep(0.1)
    pytest.fail(f'no {what} within {timeout}s')


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


def test_a_background_child_does_not_hold_the_task(ssh_env, sshd_alive, tmp_path):
    """A command (raw, script, old-style modules) ends when its shell does,
    as vanilla's ssh session does: the run is over while the backgrounded
    sleep (holding the command's stdout) still runs."""
    sleep_for = '60.%d' % (os.getpid() % 1000 * 10 + 7)
    try:
        run = run_playbook(BACKGROUND_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env),
                           extra_vars={'sleep_for': sleep_for}, timeout=50).assert_ok()
        assert run.task('raw with a background child', 'target')['result']['stdout'].strip() == 'started'
        still = [pid for pid, (_, cmd) in processes().items() if cmd == f'sleep {sleep_for}']
        assert len(still) == 1, still
    finally:
        for pid, (_, cmd) in processes().items():
            if cmd == f'sleep {sleep_for}':
                os.kill(pid, signal.SIGKILL)
