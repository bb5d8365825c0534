"""Nothing of a run survives it: the mux, target interpreters, module
children and temp dirs go away on a normal exit, on Ctrl-C (SIGINT to the
foreground process group) and when ansible-playbook is SIGKILLed; a target
interpreter killed between tasks is replaced."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (inventory_for, new_svc_processes_after, prepare_playbook, processes, read_results,
                     run_playbook, svc_processes)

# Both playbooks start alike: an ssh and a local interpreter, and a become one.
COMMON_TASKS = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ping:
    - name: become
      command: id -un
      become: true
      when: inventory_hostname == 'target'
"""

PB = COMMON_TASKS + """    - name: copy
      copy: content="x" dest="{{ lookup('env', 'SVC_TEST_OUT') }}/{{ inventory_hostname }}"
"""

SLEEP_PB = COMMON_TASKS + """    - name: sleep
      command: sleep {{ sleep_for }}
    - name: never reached
      command: id -un
"""


def _tmp_svc_dirs():
    return set(glob.glob('/tmp/ansible-svc-*'))


def _fmt(procs):
    return '\n'.join(f'  {pid} {user}: {cmd[:200]}' for pid, (user, cmd) in sorted(procs.items()))


def test_normal_exit_leaves_nothing(ssh_env, sshd_alive, tmp_path):
    before = svc_processes()
    dirs_before = _tmp_svc_dirs()
    private_tmp = tmp_path / 'tmpdir'
    private_tmp.mkdir()
    import tempfile
    out = Path(tempfile.mkdtemp(prefix='svc-proc-out-'))
    os.chmod(out, 0o1777)
    r = run_playbook(PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env),
                     env={'TMPDIR': str(private_tmp), 'SVC_TEST_OUT': str(out)}).assert_ok()
    assert r.task('become', 'target')['result']['stdout'] == 'root'
    left = new_svc_processes_after(before)
    assert not left, 'processes left after a normal exit:\n' + _fmt(left)
    # The mux's private dir (controller TMPDIR) and the targets' payload
    # dirs (/tmp of svc-login and root) are gone too.
    assert not list(private_tmp.glob('ansible-svc-*')), list(private_tmp.iterdir())
    assert _tmp_svc_dirs() - dirs_before == set()


def _start(tmp_path, ssh_env, sleep_for, strategy='svc_linear'):
    """Start the sleep playbook with a private TMPDIR (where the mux puts its
    directory): tmp_path / 'tmpdir'."""
    (tmp_path / 'tmpdir').mkdir()
    cmd, env, results_file = prepare_playbook(SLEEP_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env),
                                              strategy=strategy, extra_vars={'sleep_for': sleep_for},
                                              env={'TMPDIR': str(tmp_path / 'tmpdir')})
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return proc, results_file


def _wait_for_sleeps(proc, sleep_for, timeout=60):
    """Wait until this run's sleep runs for both hosts (svc-login's and root's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        users = {user for user, cmd in processes().values() if cmd == f'sleep {sleep_for}'}
        if {'svc-login', 'root'} <= users:
            return
        if proc.poll() is not None:
            pytest.fail(f'ansible-playbook exited early ({proc.returncode}):\n{proc.stdout.read()}')
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f'the sleep tasks did not start within {timeout}s:\n{proc.stdout.read()}')


@pytest.mark.parametrize('how', ['sigint', 'sigkill'])
def test_interrupted_run_leaves_nothing(ssh_env, sshd_alive, tmp_path, how):
    before = svc_processes()
    # A sleep length unique to this run, to recognise its task processes.
    sleep_for = '30.%d' % (os.getpid() % 1000 * 10 + (how == 'sigkill'))
    proc, results_file = _start(tmp_path, ssh_env, sleep_for)
    try:
        _wait_for_sleeps(proc, sleep_for)
        assert svc_processes().keys() - before.keys(), 'no svc process seen during the run'
        if how == 'sigint':
            os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C in a terminal does
        else:
            os.kill(proc.pid, signal.SIGKILL)    # only ansible-playbook itself
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f'ansible-playbook did not exit within 30s of {how}')
        start = time.monotonic()
        left = new_svc_processes_after(before, timeout=15)
        assert not left, f'processes left {time.monotonic() - start:.1f}s after {how}:\n' + _fmt(left)
        # After a SIGKILL of the controller the mux removes its directory.
        deadline = time.monotonic() + 15
        while list((tmp_path / 'tmpdir').glob('ansible-svc-*')) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not list((tmp_path / 'tmpdir').glob('ansible-svc-*')), f'mux directory left after {how}'
        results, _ = read_results(results_file)
        assert not [r for r in results if r['task'] == 'never reached']
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        # Ansible's workers run in sessions of their own: after a SIGKILL of
        # ansible-playbook they are orphans that only this cleanup ends.
        doomed = {p for p, (_, cmd) in processes().items() if str(tmp_path) in cmd}
        doomed |= {p for p in svc_processes() if p not in before}
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


KILL_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: first
      command: id -un
    - name: become first
      command: id -un
      become: true
    - name: kill the target interpreters
      # The ssh login interpreter (svc-login) and the become interpreter (root,
      # child of sudo); not root's local interpreter, which runs this command.
      shell: |
        pkill -KILL -u svc-login -f "^/usr/bin/python3[(]mitogen:ansible-svc[)]"
        for p in $(pgrep -u root -f "^/usr/bin/python3[(]mitogen:ansible-svc[)]"); do
          parent=$(ps -o ppid= -p "$p" | tr -d ' ')
          [ "$(ps -o comm= -p "$parent")" = sudo ] && kill -KILL "$p"
        done
        true
      delegate_to: local
      become: false
    - name: second
      command: id -un
      ignore_unreachable: true
    - name: become second
      command: id -un
      become: true
      ignore_unreachable: true
    - name: third
      command: id -un
"""


def test_killed_target_interpreter_is_replaced(ssh_env, sshd_alive, tmp_path):
    r = run_playbook(KILL_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env), timeout=120)
    assert r.task('kill the target interpreters')['result']['rc'] == 0, r.output
    # Vanilla has no interpreter to lose: the next task simply works. The
    # mux drops a disconnected interpreter, so svc must behave the same.
    assert r.task('second')['status'] == 'changed', r.output
    assert r.task('second')['result']['stdout'] == 'svc-login'
    assert r.task('become second')['result']['stdout'] == 'root', r.output
    assert r.task('third')['result']['stdout'] == 'svc-login'
    assert r.rc == 0, r.output
