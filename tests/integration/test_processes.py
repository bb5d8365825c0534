"""Nothing of a run survives it: the mux, target interpreters, module
children and temp dirs go away on a normal exit (signals: test_signals.py);
a target interpreter killed between tasks is replaced."""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import connection_only, inventory_for, mux_dirs, new_svc_processes_after, run_playbook, svc_processes

pytestmark = pytest.mark.newest_core_only

# An ssh and a local interpreter, and a become one.
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
    - name: parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
"""

PB = COMMON_TASKS + """    - name: copy
      copy: content="x" dest="{{ lookup('env', 'SVC_TEST_OUT') }}/{{ inventory_hostname }}"
"""


def _tmp_svc_dirs():
    return set(glob.glob('/tmp/ansible-svc-*'))


def _fmt(procs):
    return '\n'.join(f'  {pid} {user}: {cmd[:200]}' for pid, (user, cmd) in sorted(procs.items()))


@pytest.mark.parametrize('mode', ['svc_linear', 'connection'])
def test_normal_exit_leaves_nothing(ssh_env, sshd_alive, tmp_path, run_tmpdir, mode):
    before = svc_processes()
    dirs_before = _tmp_svc_dirs()
    private_tmp = run_tmpdir
    # Where svc-login can write (pytest's tmp_path is private to root).
    out = Path(tempfile.mkdtemp(prefix='svc-proc-out-'))
    os.chmod(out, 0o1777)
    inventory, strategy = inventory_for(ssh_env), 'svc_linear'
    if mode == 'connection':
        inventory, strategy = connection_only(inventory), 'linear'
    try:
        r = run_playbook(PB, tmp_path=tmp_path, inventory=inventory, strategy=strategy,
                         env={'TMPDIR': str(private_tmp), 'SVC_TEST_OUT': str(out)}).assert_ok()
    finally:
        shutil.rmtree(out)
    assert r.task('become', 'target')['result']['stdout'] == 'root'
    assert 'mitogen:ansible-svc' in r.task('parent', 'target')['result']['stdout']
    left = new_svc_processes_after(before)
    assert not left, 'processes left after a normal exit:\n' + _fmt(left)
    # The mux's private dir (controller TMPDIR) and the targets' payload
    # dirs (/tmp of svc-login and root) are gone too.
    assert not mux_dirs(private_tmp), list(private_tmp.rglob('*'))
    assert _tmp_svc_dirs() - dirs_before == set()


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
