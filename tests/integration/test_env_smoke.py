"""Prove the ssh test environment works with vanilla Ansible.

These use the stock `linear` strategy and `ssh` connection only, so a failure
here points at the environment (tests/env/setup.sh), not at ansible-svc.
"""
from __future__ import annotations

import socket

from helpers import inventory_for

WHOAMI = """
- hosts: {hosts}
  gather_facts: false
  tasks:
    - name: whoami
      command: id -un
"""


def test_ping_over_ssh(ssh_env, sshd_alive, playbook):
    pb = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ping:
    - name: whoami
      command: id -un
"""
    r = playbook(pb, inventory=inventory_for(ssh_env), strategy='linear').assert_ok()
    assert r.task('ping', host='target')['status'] == 'ok'
    assert r.task('ping', host='local')['status'] == 'ok'
    assert r.task('whoami', host='target')['result']['stdout'] == 'svc-login'
    assert r.stats['target']['failures'] == 0


def test_become_root_without_password(ssh_env, sshd_alive, playbook):
    r = playbook(WHOAMI.format(hosts='target'), strategy='linear',
                 inventory=inventory_for(ssh_env, become=True)).assert_ok()
    assert r.task('whoami')['result']['stdout'] == 'root'


def test_become_with_password(ssh_env, sshd_alive, playbook):
    users = ssh_env['users']
    inv = inventory_for(ssh_env, user=users['pw'], become=True,
                        extra=f"ansible_become_password={users['pw_password']}")
    pb = WHOAMI.format(hosts='target') + f"""
    - name: whoami as target
      command: id -un
      become_user: {users['target']}
"""
    r = playbook(pb, inventory=inv, strategy='linear').assert_ok()
    assert r.task('whoami')['result']['stdout'] == 'root'
    assert r.task('whoami as target')['result']['stdout'] == users['target']


def test_become_with_password_is_needed(ssh_env, sshd_alive, playbook):
    # Guards the environment itself: svc-pw must not have passwordless sudo,
    # or the password tests above would prove nothing.
    r = playbook(WHOAMI.format(hosts='target'), strategy='linear',
                 inventory=inventory_for(ssh_env, user=ssh_env['users']['pw'], become=True))
    assert r.rc != 0, r.output
    assert r.task('whoami')['status'] == 'failed'


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_wrong_port_is_unreachable(ssh_env, sshd_alive, playbook):
    pb = """
- hosts: target
  gather_facts: false
  tasks:
    - name: ping
      ping:
      ignore_unreachable: true
    - name: after
      debug:
        msg: still here
"""
    inv = inventory_for(ssh_env, extra=f'ansible_port={_closed_port()} ansible_ssh_timeout=5')
    r = playbook(pb, inventory=inv, strategy='linear', timeout=60)
    ping = r.task('ping')
    assert ping['status'] == 'unreachable', r.output
    assert ping['result']['unreachable'] is True
    # ignore_unreachable kept the host in the play and the run green.
    assert r.task('after')['status'] == 'ok'
    assert r.rc == 0, r.output
    assert r.stats['target']['ignored'] == 1
