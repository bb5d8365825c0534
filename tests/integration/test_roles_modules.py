"""Modules from a role's library/ with role-local module_utils."""
from __future__ import annotations

from helpers import REPO, assert_same_results, inventory_for, run_playbook

PB = """
- hosts: all
  gather_facts: false
  roles:
    - svc_test_modules
  tasks:
    - name: role module with become
      svc_echo:
        msg: as root
      become: true
      when: inventory_hostname == 'target'
"""


def test_role_library_module(ssh_env, sshd_alive, tmp_path):
    env = {'ANSIBLE_ROLES_PATH': str(REPO / 'roles')}
    runs = {s: run_playbook(PB, tmp_path=tmp_path / s, strategy=s, inventory=inventory_for(ssh_env), env=env)
            for s in ('linear', 'svc_linear')}
    runs['linear'].assert_ok()
    r = runs['svc_linear'].assert_ok()
    for host in ('target', 'local'):
        res = r.task('svc_test_modules : Echo through svc_echo', host)
        assert res['status'] == 'ok', res
        assert res['result']['shouted'] == f'HÉLLO {host.upper()}! (svc-test-util-v1)', res
        failed = r.task('svc_test_modules : Echo through svc_echo, failing', host)
        assert failed['status'] == 'failed'
        assert failed['result']['msg'] == f'BAD {host.upper()}! (svc-test-util-v1)'
        assert failed['result']['rc'] == 5
    assert r.task('role module with become', 'target')['result']['uid'] == 0
    assert_same_results(runs['linear'], r)
