"""Become (sudo, with and without password) and unreachable hosts, each
compared with vanilla `linear`."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from helpers import assert_same_results, inventory_for, run_playbook

pytestmark = pytest.mark.newest_core_only


def _both(pb, tmp_path, inventory, **kw):
    return {s: run_playbook(pb, tmp_path=tmp_path / s, strategy=s, inventory=inventory, **kw)
            for s in ('linear', 'svc_linear')}


@pytest.fixture
def shared_ws():
    ws = Path(f'/tmp/svc-become-{uuid.uuid4().hex[:8]}')
    ws.mkdir()
    os.chmod(ws, 0o1777)
    yield ws
    shutil.rmtree(ws, ignore_errors=True)


BECOME_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: reset
      file: path="{{ ws }}/{{ item }}" state=absent
      become: true
      loop: [root-owned, target-owned]
    - name: id as root
      command: id -u
      become: true
    - name: copy as root
      copy: content="root file\\n" dest="{{ ws }}/root-owned"
      become: true
    - name: stat root-owned
      stat: path="{{ ws }}/root-owned"
    - name: id as target user
      command: id -un
      become: true
      become_user: svc-target
    - name: touch as target user
      file: path="{{ ws }}/target-owned" state=touch
      become: true
      become_user: svc-target
    - name: stat target-owned
      stat: path="{{ ws }}/target-owned"
    - name: facts as target user
      setup:
        gather_subset: [min]
        filter: [ansible_user_id, ansible_user_uid, ansible_env]
      become: true
      become_user: svc-target
    - name: python module process uid as target user
      command: python3 -c "import os; print(os.getuid(), os.geteuid(), os.getppid())"
      become: true
      become_user: svc-target
    - name: id without become afterwards
      command: id -un
"""


def test_become_sudo_without_password(ssh_env, sshd_alive, tmp_path, shared_ws):
    runs = {}
    for s in ('linear', 'svc_linear'):
        runs[s] = run_playbook(BECOME_PB, tmp_path=tmp_path / s, strategy=s, inventory=inventory_for(ssh_env),
                               extra_vars={'ws': str(shared_ws)})
    runs['linear'].assert_ok()
    r = runs['svc_linear'].assert_ok()
    assert r.task('id as root')['result']['stdout'] == '0'
    assert r.task('stat root-owned')['result']['stat']['pw_name'] == 'root'
    assert r.task('id as target user')['result']['stdout'] == 'svc-target'
    assert r.task('stat target-owned')['result']['stat']['pw_name'] == 'svc-target'
    facts = r.task('facts as target user')['result']['ansible_facts']
    assert facts['ansible_user_id'] == 'svc-target'
    uid = str(facts['ansible_user_uid'])
    uids = r.task('python module process uid as target user')['result']['stdout'].split()
    assert uids[:2] == [uid, uid]
    assert r.task('id without become afterwards')['result']['stdout'] == 'svc-login'
    env_keys = ('HOME', 'USER', 'LOGNAME', 'SUDO_USER', 'PATH')
    got = {s: {k: runs[s].task('facts as target user')['result']['ansible_facts']['ansible_env'].get(k)
               for k in env_keys} for s in runs}
    assert got['svc_linear'] == got['linear'], got
    # Everything but the env dump and the pid must be identical.
    assert_same_results(runs['linear'], r, skip_tasks=('reset', 'facts as target user',
                                                      'python module process uid as target user'))


PW_PB = """
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: whoami root
      command: id -un
    - name: whoami target
      command: id -un
      become_user: svc-target
    - name: after
      command: id -un
      become: false
"""


def _pw_inventory(ssh_env, hosts):
    lines = ['[all]']
    for name, password in hosts:
        inv = inventory_for(ssh_env, user='svc-pw',
                            extra=f'ansible_become_password={password}').splitlines()[1]
        lines.append(name + inv[len('target'):])
    return '\n'.join(lines) + '\n'


def test_become_with_password(ssh_env, sshd_alive, tmp_path):
    inv = _pw_inventory(ssh_env, [('target', 'svc-pw-secret')])
    runs = _both(PW_PB, tmp_path, inv)
    runs['linear'].assert_ok()
    r = runs['svc_linear'].assert_ok()
    assert r.task('whoami root')['result']['stdout'] == 'root'
    assert r.task('whoami target')['result']['stdout'] == 'svc-target'
    assert r.task('after')['result']['stdout'] == 'svc-pw'
    assert_same_results(runs['linear'], r)


def test_wrong_become_password_fails_not_unreachable(ssh_env, sshd_alive, tmp_path):
    inv = _pw_inventory(ssh_env, [('bad', 'not-the-password'), ('good', 'svc-pw-secret')])
    runs = _both(PW_PB, tmp_path, inv, args=['--forks', '1'], timeout=120)
    for s, r in runs.items():
        assert r.rc == 2, r.output
        bad = r.task('whoami root', 'bad')
        assert bad['status'] == 'failed', (s, bad)
        assert not bad['result'].get('unreachable'), (s, bad)
        assert r.stats['bad']['failures'] == 1 and r.stats['bad']['unreachable'] == 0, (s, r.stats)
        assert r.task('whoami root', 'good')['result']['stdout'] == 'root', s
        assert r.task('whoami target', 'good')['result']['stdout'] == 'svc-target', s
        assert r.task('after', 'good')['result']['stdout'] == 'svc-pw', s
    # Vanilla says "Incorrect sudo password"; the svc message must also say
    # what went wrong (a password problem), not something generic.
    msg = runs['svc_linear'].task('whoami root', 'bad')['result']['msg']
    assert 'password' in msg.lower(), msg


def _closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


UNREACHABLE_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ping:
      ignore_unreachable: true
    - name: command
      command: id -un
      ignore_unreachable: true
    - name: after
      debug:
        msg: still here
"""


def test_unreachable_hosts(ssh_env, sshd_alive, tmp_path):
    other_key = tmp_path / 'other_key'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(other_key)], check=True)
    base = inventory_for(ssh_env, extra='ansible_ssh_timeout=5').splitlines()[1]
    rest = base[len('target'):]
    inv = '\n'.join([
        '[all]',
        'good' + rest,
        'badport' + rest + f' ansible_port={_closed_port()}',
        'badkey' + rest + f' ansible_ssh_private_key_file={other_key}',
        'baduser' + rest + ' ansible_user=svc-no-such-user',
        '',
    ])
    # No ControlMaster: vanilla must not reuse the master connection that
    # host `good` (same address and user) opened with the right key.
    runs = _both(UNREACHABLE_PB, tmp_path, inv, timeout=120,
                 env={'ANSIBLE_SSH_ARGS': '-C -o ControlMaster=no'})
    for s, r in runs.items():
        assert r.rc == 0, r.output
        assert r.task('command', 'good')['result']['stdout'] == 'svc-login', s
        for host in ('badport', 'badkey', 'baduser'):
            for task in ('ping', 'command'):
                res = r.task(task, host)
                assert res['status'] == 'unreachable', (s, host, task, res)
                assert res['result']['unreachable'] is True
            assert r.task('after', host)['status'] == 'ok', (s, host)
            assert r.stats[host]['unreachable'] == 0 and r.stats[host]['ignored'] == 2, (s, host, r.stats)
    for host in ('badport', 'badkey', 'baduser'):
        msg = runs['svc_linear'].task('ping', host)['result']['msg']
        assert msg and '127.0.0.1' in msg, (host, msg)
