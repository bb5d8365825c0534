"""Become plugins beyond sudo and su (issue 14), each against vanilla on the
same playbook: doas natively, a site's own plugin (svc_test_sudo, a test
plugin ansible-svc knows nothing of), sudo with flags mitogen's sudo does
not take, and su with a password and a prompt in another language (a
stand-in su that asks in German, as su does under LANG=de_DE), all three
through the plugin's own command line. With and without a password; a
wrong one fails the task as in vanilla and never hangs.

How a task proves it was accelerated: its shell's parent is one of our
interpreters (``python3(mitogen:ansible-svc)``).
"""
from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import assert_same_results, inventory_for, run_playbook

PLUGINS = {'ANSIBLE_BECOME_PLUGINS': str(Path(__file__).resolve().parent / 'become_plugins')}

PB = """
- hosts: all
  gather_facts: false
  become: true
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
        path: /tmp/svc-become-plugin-{{ inventory_hostname }}
        state: absent
    - name: file
      copy:
        content: "{{ inventory_hostname }}\\n"
        dest: /tmp/svc-become-plugin-{{ inventory_hostname }}
    - name: stat
      stat:
        path: /tmp/svc-become-plugin-{{ inventory_hostname }}
    - name: module as another user
      setup:
        gather_subset: [min]
        filter: [ansible_user_id]
      become_user: svc-target
    - name: after
      command: id -un
      become: false
"""

#: One inventory host per case: (become method, flags, login, password,
#: group of the root task).
CASES = {
    'doas': ('doas', None, 'svc-login', None, 'root'),
    'doas-password': ('doas', None, 'svc-pw', 'svc-pw-secret', 'root'),
    'own-plugin': ('svc_test_sudo', None, 'svc-login', None, 'root'),
    'own-plugin-password': ('svc_test_sudo', None, 'svc-pw', 'svc-pw-secret', 'root'),
    'sudo-group': ('sudo', '-H -S -n -g adm', 'svc-login', None, 'adm'),
    'su-german': ('su', None, 'root', 'geheim', 'root'),
}

#: su asking for its password in German (the real su then runs as root,
#: which needs none).
GERMAN_SU = """#!/bin/sh
printf 'Passwort: '
read -r pw
[ "$pw" = geheim ] || { echo "su: Authentication failure"; exit 1; }
exec su "$@"
"""


@pytest.fixture
def german_su():
    """GERMAN_SU where every login account can run it (pytest's tmp_path is
    root's own)."""
    directory = Path(tempfile.mkdtemp(prefix='svc-su-', dir='/tmp'))
    directory.chmod(0o755)
    script = directory / 'german-su'
    script.write_text(GERMAN_SU)
    script.chmod(0o755)
    yield script
    shutil.rmtree(directory, ignore_errors=True)


def _remote_tmp_exists(user):
    """Both runs find the become user's ``~/.ansible/tmp``: otherwise the
    first run's module that creates it warns ("did not exist and was
    created"), and which host's task does so first is down to timing."""
    entry = pwd.getpwnam(user)
    path = Path(entry.pw_dir) / '.ansible' / 'tmp'
    path.mkdir(parents=True, exist_ok=True)
    for p in (path.parent, path):
        os.chown(p, entry.pw_uid, entry.pw_gid)
        p.chmod(0o700)


def _inventory(ssh_env, cases, german_su):
    lines = ['[all]']
    for name, (method, flags, login, password, _) in cases.items():
        extra = f'ansible_become_method={method}'
        if password:
            extra += f' ansible_become_password={password}'
        if flags:
            extra += f" ansible_become_flags='{flags}'"
        if name.startswith('su-german'):
            extra += f' ansible_become_exe={german_su}'
        target = inventory_for(ssh_env, user=login, extra=extra).splitlines()[1]
        lines.append(name + target[len('target'):])
    return '\n'.join(lines) + '\n'


def _runs(pb, tmp_path, inventory, **kw):
    _remote_tmp_exists('svc-target')
    return {s: run_playbook(pb, tmp_path=tmp_path / s, strategy=s, inventory=inventory, env=PLUGINS, **kw)
            for s in ('linear', 'svc_linear')}


def test_become_plugins_match_vanilla(ssh_env, sshd_alive, tmp_path, german_su):
    runs = _runs(PB, tmp_path, _inventory(ssh_env, CASES, german_su))
    vanilla, svc = runs['linear'].assert_ok(), runs['svc_linear'].assert_ok()
    for host, (method, flags, login, password, group) in CASES.items():
        assert 'mitogen:ansible-svc' not in vanilla.task('parent', host)['result']['stdout']
        assert 'mitogen:ansible-svc' in svc.task('parent', host)['result']['stdout'], svc.task('parent', host)
        assert svc.task('user', host)['result']['stdout'] == 'root'
        assert svc.task('group', host)['result']['stdout'] == group, host
        assert svc.task('as another user', host)['result']['stdout'] == 'svc-target'
        assert svc.task('stat', host)['result']['stat']['pw_name'] == 'root'
        assert svc.task('module as another user', host)['result']['ansible_facts']['ansible_user_id'] == 'svc-target'
        assert svc.task('after', host)['result']['stdout'] == login
    assert_same_results(vanilla, svc, skip_tasks=('parent', 'reset'))


WRONG_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: wrong password
      command: id -un
      become: true
    - name: after
      command: id -un
"""


def test_a_wrong_password_fails_the_task_as_in_vanilla(ssh_env, sshd_alive, tmp_path, german_su):
    cases = {method: (method, None, 'svc-pw', 'not-the-password', None) for method in ('doas', 'svc_test_sudo')}
    # Logged in as svc-login: root's become to root would be skipped.
    cases['su-german'] = ('su', None, 'svc-login', 'falsch', None)
    runs = _runs(WRONG_PB, tmp_path, _inventory(ssh_env, cases, german_su), timeout=120)
    for strategy, run in runs.items():
        assert run.rc == 2, run.output
        for host in cases:
            wrong = run.task('wrong password', host)
            assert wrong['status'] == 'failed' and not wrong['result'].get('unreachable'), (strategy, wrong)
            assert 'password' in wrong['result']['msg'].lower(), (strategy, wrong)
            assert run.stats[host]['failures'] == 1 and run.stats[host]['unreachable'] == 0, (strategy, run.stats)
