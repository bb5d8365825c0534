"""svc_task_isolation: where a module runs (a forked child or the target
interpreter itself), what inline restores, and tasks the worker gives up on
(`timeout:`) being stopped on the target in both modes."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from helpers import inventory_for, processes, run_playbook

pytestmark = pytest.mark.newest_core_only

WHERE_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: interpreter
      raw: echo $PPID
    - name: forked
      shell: echo $PPID; awk '/^PPid/ {print $2}' /proc/$PPID/status
    - name: inline
      shell: echo $PPID; awk '/^PPid/ {print $2}' /proc/$PPID/status
      vars:
        svc_task_isolation: inline
    - name: inline changes things
      shell: echo done
      args:
        chdir: /tmp
      environment:
        SVC_INLINE_LEAK: leaked
      vars:
        svc_task_isolation: inline
    - name: inline probe
      shell: echo "$PWD ${SVC_INLINE_LEAK:-clean}"
      vars:
        svc_task_isolation: inline
    - name: inline python module
      stat:
        path: /etc/hostname
      vars:
        svc_task_isolation: inline
    - name: interpreter again
      raw: echo $PPID
"""


def test_fork_and_inline_run_where_they_say(tmp_path, sshd_alive, ssh_env):
    svc = run_playbook(WHERE_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env)).assert_ok()
    for host in ('target', 'local'):
        interpreter = svc.task('interpreter', host)['result']['stdout'].strip()
        forked_pid, forked_parent = svc.task('forked', host)['result']['stdout_lines']
        inline_pid, _ = svc.task('inline', host)['result']['stdout_lines']
        # fork: the module is a child of the interpreter; inline: it is the
        # interpreter.
        assert forked_pid != interpreter and forked_parent == interpreter
        assert inline_pid == interpreter
        # Where shell commands start: the login's home over ssh, the run's
        # directory for local (as vanilla), not where the last task went.
        start = {'target': '/home/svc-login', 'local': str(tmp_path)}[host]
        assert svc.task('inline probe', host)['result']['stdout'] == '%s clean' % start
        assert svc.task('inline python module', host)['result']['stat']['exists'] is True
        assert svc.task('interpreter again', host)['result']['stdout'].strip() == interpreter


# The interpreter's children other than this shell: "pid state" lines.
# (Processes may end while the loop runs: awk failing on them is fine.)
CHILDREN = """for f in /proc/[0-9]*/status; do awk -v p=$PPID -v me=$$ '/^State/ {st=$2} /^Pid/ {pid=$2} /^PPid/ {pp=$2} END {if (pp == p && pid != me) print pid, st}' $f 2>/dev/null || :; done"""

SPARE_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      shell: echo $PPID
    - name: children
      raw: "%s"
    - name: second
      shell: echo $PPID
    - name: other module
      stat:
        path: /
    - name: children after other module
      raw: "%s"
    - name: third
      shell: echo $PPID
""" % (CHILDREN.replace('"', '\\"'), CHILDREN.replace('"', '\\"'))


def _children(result):
    return dict(line.split() for line in result['stdout_lines'])


def test_forked_tasks_start_in_a_child_forked_ahead(tmp_path, sshd_alive, ssh_env):
    """After a forked task the interpreter forks the next task's process
    while idle; the next task runs in it. A task with a module the spare
    does not have retires it (no zombie, no process left) and forks anew."""
    svc = run_playbook(SPARE_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env)).assert_ok()
    for host in ('target', 'local'):
        first = svc.task('first', host)['result']['stdout']
        waiting = _children(svc.task('children', host)['result'])
        # One child waits (sleeping on its control pipe): the spare.
        assert list(waiting.values()) == ['S'], waiting
        second = svc.task('second', host)['result']['stdout']
        assert second in waiting and second != first
        # `stat` was not in the interpreter when the spare after `second`
        # was forked: that spare is gone, reaped; the one after `stat` waits.
        after = _children(svc.task('children after other module', host)['result'])
        assert list(after.values()) == ['S'], after
        assert second not in after
        assert svc.task('third', host)['result']['stdout'] in after


TIMEOUT_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: interpreter
      raw: echo $PPID
    - name: hang
      command: sleep 300.{{ marker }}
      timeout: 2
      ignore_errors: true
      vars:
        svc_task_isolation: "{{ isolation }}"
    - name: next
      command: id -un
    - name: interpreter after
      raw: echo $PPID
"""


def _hang_then_next(tmp_path, ssh_env, isolation):
    marker = str(uuid.uuid4().int)[:12]
    svc = run_playbook(TIMEOUT_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env), timeout=120,
                       extra_vars={'marker': marker, 'isolation': isolation}).assert_ok()
    for host in ('target', 'local'):
        hang = svc.task('hang', host)
        assert hang['status'] == 'failed' and 'Timed out after 2 second' in hang['result']['msg']
        assert svc.task('next', host)['result']['stdout'] in ('svc-login', 'root')
    left = [cmd for _, cmd in processes().values() if marker in cmd]
    assert not left, left
    return svc


def test_timeout_stops_forked_module_and_keeps_interpreter(tmp_path, sshd_alive, ssh_env):
    svc = _hang_then_next(tmp_path, ssh_env, 'fork')
    for host in ('target', 'local'):
        assert svc.task('interpreter', host)['result']['stdout'] == svc.task('interpreter after', host)['result']['stdout']


def test_timeout_of_inline_module_replaces_interpreter(tmp_path, sshd_alive, ssh_env):
    svc = _hang_then_next(tmp_path, ssh_env, 'inline')
    for host in ('target', 'local'):
        assert svc.task('interpreter', host)['result']['stdout'] != svc.task('interpreter after', host)['result']['stdout']


def test_wrong_isolation_value_is_a_clear_error(tmp_path, sshd_alive, ssh_env):
    pb = """
- hosts: target
  gather_facts: false
  tasks:
    - name: bad
      command: id -un
      vars:
        svc_task_isolation: sideways
"""
    svc = run_playbook(pb, tmp_path=tmp_path, inventory=inventory_for(ssh_env))
    assert svc.rc != 0
    bad = svc.task('bad', 'target')
    assert bad['status'] == 'failed'
    assert 'task_isolation' in bad['result']['msg'] and 'sideways' in bad['result']['msg'], bad['result']['msg']


RESPAWN_PB = """
- hosts: all
  gather_facts: false
  vars:
    svc_task_isolation: inline
  tasks:
    - name: respawn inline
      iso_respawn: mode=respawn data="inline ü"
    - name: respawn inline, after a task deleted the zip
      iso_respawn: mode=delete_modlib
    - name: respawn inline again
      iso_respawn: mode=respawn data="again"
"""


def test_respawn_works_inline(tmp_path, sshd_alive, ssh_env):
    # The respawned process inherits fds 1 and 2: inline runs point them at
    # the task's output, as a module process would have them.
    library = Path(__file__).resolve().parent / 'isolation_library'
    svc = run_playbook(RESPAWN_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env),
                       env={'ANSIBLE_LIBRARY': str(library)}).assert_ok()
    for host in ('target', 'local'):
        first = svc.task('respawn inline', host)['result']
        assert first['respawned'] is True and first['data'] == 'inline ü'
        assert svc.task('respawn inline again', host)['result']['data'] == 'again'


SIGHUP_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ignored signals
      shell: "awk '/^SigIgn/ {print $2}' /proc/$$/status"
"""


def test_a_run_under_nohup_gives_modules_what_vanilla_does(tmp_path, sshd_alive, ssh_env):
    """Under nohup, vanilla's modules on a local host inherit SIGHUP ignored
    (over ssh, sshd's defaults); ours restored the default instead."""
    import subprocess

    from helpers import prepare_playbook, read_results

    ignored = {}
    for strategy in ('linear', 'svc_linear'):
        run_dir = tmp_path / strategy
        run_dir.mkdir()
        cmd, env, results_file = prepare_playbook(SIGHUP_PB, tmp_path=run_dir, inventory=inventory_for(ssh_env),
                                                  strategy=strategy)
        proc = subprocess.run(['nohup'] + cmd, cwd=run_dir, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for r in read_results(results_file)[0]:
            ignored[strategy, r['host']] = bool(int(r['result']['stdout'], 16) & 1)  # bit 0: SIGHUP
    assert ignored['linear', 'local'] and ignored['svc_linear', 'local'], ignored
    assert ignored['linear', 'target'] == ignored['svc_linear', 'target'], ignored
