"""Per-host connection variables, vanilla connection types in the same play,
and meta: reset_connection."""
from __future__ import annotations

import os
from pathlib import Path

from helpers import REPO, assert_same_results, inventory_for, run_playbook

WHOAMI_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: whoami
      command: id -un
    - name: whoami again
      command: id -un
    - name: home
      shell: echo "$HOME"
"""


def _ssh_line(ssh_env, name, extra=''):
    return name + inventory_for(ssh_env, extra=extra).splitlines()[1][len('target'):]


def test_per_host_users_do_not_leak(ssh_env, sshd_alive, tmp_path):
    inv = '\n'.join([
        '[all]',
        _ssh_line(ssh_env, 'a', 'ansible_user=svc-login'),
        _ssh_line(ssh_env, 'b', 'ansible_user=svc-pw'),
        _ssh_line(ssh_env, 'c', 'ansible_user="{{ my_user }}" my_user=svc-pw'),
        _ssh_line(ssh_env, 'd', 'ansible_user="{{ my_user }}" my_user=svc-login'),
        '',
    ])
    runs = {s: run_playbook(WHOAMI_PB, tmp_path=tmp_path / s, strategy=s, inventory=inv)
            for s in ('linear', 'svc_linear')}
    runs['linear'].assert_ok()
    r = runs['svc_linear'].assert_ok()
    want = {'a': 'svc-login', 'b': 'svc-pw', 'c': 'svc-pw', 'd': 'svc-login'}
    for host, user in want.items():
        assert r.task('whoami', host)['result']['stdout'] == user, host
        assert r.task('whoami again', host)['result']['stdout'] == user, host
        assert r.task('home', host)['result']['stdout'] == f'/home/{user}', host
    assert_same_results(runs['linear'], r)


def test_play_keyword_remote_user(ssh_env, sshd_alive, tmp_path):
    # remote_user as a play keyword, no ansible_user in the inventory.
    line = ' '.join(w for w in inventory_for(ssh_env).splitlines()[1].split() if not w.startswith('ansible_user='))
    pb = """
- hosts: target
  gather_facts: false
  remote_user: svc-pw
  tasks:
    - name: whoami
      command: id -un
- hosts: target
  gather_facts: false
  remote_user: svc-login
  tasks:
    - name: whoami second play
      command: id -un
"""
    r = run_playbook(pb, tmp_path=tmp_path, inventory=f'[all]\n{line}\n').assert_ok()
    assert r.task('whoami')['result']['stdout'] == 'svc-pw'
    assert r.task('whoami second play')['result']['stdout'] == 'svc-login'


PARENT_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: module parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
    - name: ping
      ping:
    - name: copy
      copy: content="x" dest="{{ lookup('env', 'SVC_TEST_OUT') }}/{{ inventory_hostname }}.txt"
"""


def test_other_connection_types_run_vanilla(ssh_env, sshd_alive, tmp_path):
    import tempfile
    out = Path(tempfile.mkdtemp(prefix='svc-vanilla-'))
    os.chmod(out, 0o1777)
    inv = inventory_for(ssh_env) + 'vanilla ansible_connection=svc_test_vanilla ansible_python_interpreter=/usr/bin/python3\n'
    env = {
        # Keep the repo's connection plugins and add the test-only one.
        'ANSIBLE_CONNECTION_PLUGINS': os.pathsep.join([str(REPO / 'plugins' / 'connection'),
                                                       str(Path(__file__).parent / 'connection_plugins')]),
        'SVC_TEST_OUT': str(out),
    }
    r = run_playbook(PARENT_PB, tmp_path=tmp_path, inventory=inv, env=env).assert_ok()
    assert 'mitogen' not in r.task('module parent', 'vanilla')['result']['stdout']
    assert 'mitogen:ansible-svc' in r.task('module parent', 'local')['result']['stdout']
    assert 'mitogen:ansible-svc' in r.task('module parent', 'target')['result']['stdout']
    for host in ('vanilla', 'local', 'target'):
        assert r.task('ping', host)['result']['ping'] == 'pong'
        assert (out / f'{host}.txt').read_text() == 'x'


RESET_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: interpreter pid 1
      shell: "awk '/^PPid/ {print $2}' /proc/$PPID/status"
    - name: interpreter pid 2
      shell: "awk '/^PPid/ {print $2}' /proc/$PPID/status"
    - name: reset
      meta: reset_connection
    - name: interpreter pid 3
      shell: "awk '/^PPid/ {print $2}' /proc/$PPID/status"
    - name: old interpreter gone
      shell: "if test -d /proc/{{ old }}; then tr '\\\\0' ' ' < /proc/{{ old }}/cmdline; else echo gone; fi"
      vars:
        old: "{{ hostvars[inventory_hostname]['pid1']['stdout'] }}"
"""


def test_reset_connection(ssh_env, sshd_alive, tmp_path):
    pb = RESET_PB.replace('name: interpreter pid 1\n', 'name: interpreter pid 1\n      register: pid1\n')
    r = run_playbook(pb, tmp_path=tmp_path / 'svc', inventory=inventory_for(ssh_env), timeout=90).assert_ok()
    for host in ('target', 'local'):
        p1 = r.task('interpreter pid 1', host)['result']['stdout']
        p2 = r.task('interpreter pid 2', host)['result']['stdout']
        p3 = r.task('interpreter pid 3', host)['result']['stdout']
        # Persistent interpreter between tasks, a new one after the reset.
        assert p1 == p2, (host, p1, p2)
        assert p3 != p1, (host, p1, p3)
        assert r.task('old interpreter gone', host)['result']['stdout'] == 'gone', host
    v = run_playbook(pb, tmp_path=tmp_path / 'vanilla', strategy='linear', inventory=inventory_for(ssh_env)).assert_ok()
    assert v.task('interpreter pid 3', 'target')['status'] == 'changed'


def test_loop_items_reuse_one_connection(ssh_env, sshd_alive, tmp_path):
    # Ansible reuses a task's connection across loop items only if the plugin
    # answers to the host's connection name ("ssh"); otherwise every item
    # opens a new session with the mux.
    pb = """
- hosts: target
  gather_facts: false
  tasks:
    - name: loop
      command: echo {{ item }}
      loop: [1, 2, 3, 4, 5]
"""
    r = run_playbook(pb, tmp_path=tmp_path, inventory=inventory_for(ssh_env), args=['-vvv']).assert_ok()
    assert len(r.tasks('loop', 'target')) == 1
    assert r.stdout.count('ESTABLISH SSH CONNECTION') == 1, r.output
