"""Become plugins beyond sudo and su (issue 14), each against vanilla on the
same playbook: doas natively, a site's own plugin (svc_test_sudo, a test
plugin ansible-svc knows nothing of) and sudo with flags mitogen's sudo does
not take, both through the plugin's own command line. With and without a
password; a wrong one fails the task as in vanilla and never hangs.

How a task proves it was accelerated: its shell's parent is one of our
interpreters (``python3(mitogen:ansible-svc)``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import assert_same_results, inventory_for, run_playbook

PLUGINS = {'ANSIBLE_BECOME_PLUGINS': str(Path(__file__).resolve().parent / 'become_plugins')}

PB = """
- hosts: target
  gather_facts: false
  become: true
  become_method: "{{ method }}"
  tasks:
    - name: parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
      changed_when: false
    - name: user
      command: id -un
    - name: group
      command: id -gn
    - name: as another user
      command: id -un
      become_user: svc-target
    - name: reset
      file:
        path: /tmp/svc-become-plugin-{{ method }}
        state: absent
    - name: file
      copy:
        content: "{{ method }}\\n"
        dest: /tmp/svc-become-plugin-{{ method }}
    - name: stat
      stat:
        path: /tmp/svc-become-plugin-{{ method }}
    - name: module as another user
      setup:
        gather_subset: [min]
        filter: [ansible_user_id]
      become_user: svc-target
    - name: after
      command: id -un
      become: false
"""

CASES = {
    # name: (method, flags, login, password, group of the root task)
    'doas': ('doas', None, 'svc-login', None, 'root'),
    'doas with password': ('doas', None, 'svc-pw', 'svc-pw-secret', 'root'),
    'own plugin': ('svc_test_sudo', None, 'svc-login', None, 'root'),
    'own plugin with password': ('svc_test_sudo', None, 'svc-pw', 'svc-pw-secret', 'root'),
    'sudo -g': ('sudo', '-H -S -n -g adm', 'svc-login', None, 'adm'),
}


def _inventory(ssh_env, login, password, flags=None):
    extra = f'ansible_become_password={password}' if password else ''
    if flags:
        extra += f" ansible_become_flags='{flags}'"
    return inventory_for(ssh_env, user=login, extra=extra)


def _runs(pb, tmp_path, inventory, method, **kw):
    return {s: run_playbook(pb, tmp_path=tmp_path / s, strategy=s, inventory=inventory, extra_vars={'method': method},
                            env=PLUGINS, **kw)
            for s in ('linear', 'svc_linear')}


@pytest.mark.parametrize('case', list(CASES))
def test_become_plugin_matches_vanilla(ssh_env, sshd_alive, tmp_path, case):
    method, flags, login, password, group = CASES[case]
    runs = _runs(PB, tmp_path, _inventory(ssh_env, login, password, flags), method)
    vanilla, svc = runs['linear'].assert_ok(), runs['svc_linear'].assert_ok()
    assert 'mitogen:ansible-svc' not in vanilla.task('parent')['result']['stdout']
    assert 'mitogen:ansible-svc' in svc.task('parent')['result']['stdout'], svc.task('parent')
    assert svc.task('user')['result']['stdout'] == 'root'
    assert svc.task('group')['result']['stdout'] == group
    assert svc.task('as another user')['result']['stdout'] == 'svc-target'
    assert svc.task('stat')['result']['stat']['pw_name'] == 'root'
    assert svc.task('module as another user')['result']['ansible_facts']['ansible_user_id'] == 'svc-target'
    assert svc.task('after')['result']['stdout'] == login
    assert_same_results(vanilla, svc, skip_tasks=('parent', 'reset'))


WRONG_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: wrong password
      command: id -un
      become: true
      become_method: "{{ method }}"
    - name: after
      command: id -un
"""


@pytest.mark.parametrize('method', ['doas', 'svc_test_sudo'])
def test_a_wrong_password_fails_the_task_as_in_vanilla(ssh_env, sshd_alive, tmp_path, method):
    runs = _runs(WRONG_PB, tmp_path, _inventory(ssh_env, 'svc-pw', 'not-the-password'), method, timeout=120)
    for strategy, run in runs.items():
        assert run.rc == 2, run.output
        wrong = run.task('wrong password')
        assert wrong['status'] == 'failed' and not wrong['result'].get('unreachable'), (strategy, wrong)
        assert 'password' in wrong['result']['msg'].lower(), (strategy, wrong)
        assert run.stats['target']['failures'] == 1 and run.stats['target']['unreachable'] == 0, (strategy, run.stats)
