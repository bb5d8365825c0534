"""Tasks run as exactly the account, interpreter and credentials vanilla uses.

Each test runs one playbook with vanilla ``linear`` and with ``svc_linear``
and asserts both on what vanilla does and on what ansible-svc does. Every
case here once went wrong in ansible-svc (issue 10): settings frozen at the
first loop item, a wrong password riding on an interpreter a right one had
started, a virtualenv's python aliased to the system one, ``local`` taking
``remote_user``, async failure texts of our own. The systematic matrix is in
test_identity_matrix.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import PrivateSshd, inventory_for, run_playbook

LIBRARY = Path(__file__).resolve().parent / 'library'
BAD_PASSWORD = 'wrong-Secret-4711'


def both(tmp_path: Path, playbook: str, inventory: str, **kwargs):
    """(vanilla, svc) results of the same playbook, each in its own dir."""
    env = dict({'ANSIBLE_LIBRARY': str(LIBRARY)}, **kwargs.pop('env', {}))
    runs = []
    for strategy in ('linear', 'svc_linear'):
        runs.append(run_playbook(playbook, tmp_path=tmp_path / strategy, inventory=inventory,
                                 strategy=strategy, env=env, **kwargs))
    return tuple(runs)


def items(result, task, host, key):
    """`key` of each loop item's result of `task` on `host`."""
    return [r.get(key) for r in result.task(task, host)['result']['results']]


def status(result, task, host):
    return result.task(task, host)['status']


def assert_no_secret(result, *secrets):
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr, (
            f'a password appears in the output of {" ".join(result.command)}')


# -- loop items and tasks ------------------------------------------------------

PER_ITEM_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: become_user per item
      svc_identity:
      become: true
      vars:
        ansible_become_user: "{{ item }}"
      loop: [root, svc-target, root]
    - name: ansible_user per item
      svc_identity:
      vars:
        ansible_user: "{{ item }}"
      loop: [svc-login, root, svc-login]
    - name: become on and off per item
      svc_identity:
      become: "{{ item }}"
      loop: [false, true, false]
    - name: interpreter per item
      svc_identity:
      vars:
        ansible_python_interpreter: "{{ item }}"
      loop: "{{ pythons }}"
"""


def test_settings_are_evaluated_per_loop_item(tmp_path, sshd_alive, ssh_env):
    pythons = ['/usr/bin/python3', '/usr/bin/python3.11', '/usr/bin/python3']
    van, svc = both(tmp_path, PER_ITEM_PB, inventory_for(ssh_env), extra_vars={'pythons': pythons})
    for run in (van, svc):
        run.assert_ok()
        assert items(run, 'become_user per item', 'target', 'user') == ['root', 'svc-target', 'root']
        assert items(run, 'ansible_user per item', 'target', 'user') == ['svc-login', 'root', 'svc-login']
        assert items(run, 'become on and off per item', 'target', 'user') == ['svc-login', 'root', 'svc-login']
        assert items(run, 'interpreter per item', 'target', 'executable') == pythons
    for task in ('become_user per item', 'ansible_user per item', 'become on and off per item', 'interpreter per item'):
        for key in ('user', 'uid', 'groups', 'executable', 'prefix', 'cwd'):
            assert items(svc, task, 'target', key) == items(van, task, 'target', key), (task, key)


# -- credentials ---------------------------------------------------------------

BECOME_PASSWORD_PB = """
- hosts: pw
  gather_facts: false
  tasks:
    - name: right become password
      svc_identity:
      become: true
      vars:
        ansible_become_password: "{{ right }}"
    - name: wrong become password after a right one
      svc_identity:
      become: true
      vars:
        ansible_become_password: "{{ wrong }}"
      ignore_errors: true
    - name: no become password after a right one
      svc_identity:
      become: true
      ignore_errors: true
- hosts: pw_alias
  gather_facts: false
  tasks:
    - name: wrong become password on an alias
      svc_identity:
      become: true
      vars:
        ansible_become_password: "{{ wrong }}"
      ignore_errors: true
"""


def test_a_wrong_become_password_fails_whatever_ran_before(tmp_path, sshd_alive, ssh_env):
    user, right = ssh_env['users']['pw'], ssh_env['users']['pw_password']
    line = inventory_for(ssh_env, user=user).splitlines()[1].split(' ', 1)[1]
    inventory = f'[pw]\npw {line}\n[pw_alias]\npw_alias {line}\n'
    van, svc = both(tmp_path, BECOME_PASSWORD_PB, inventory, args=['-vvvv'],
                    extra_vars={'right': right, 'wrong': BAD_PASSWORD})
    for run in (van, svc):
        assert run.task('right become password', 'pw')['result']['user'] == 'root'
        assert status(run, 'wrong become password after a right one', 'pw') == 'failed'
        assert status(run, 'no become password after a right one', 'pw') == 'failed'
        assert status(run, 'wrong become password on an alias', 'pw_alias') == 'failed'
        assert_no_secret(run, right, BAD_PASSWORD)


@pytest.fixture(scope='module')
def password_sshd(ssh_env, tmp_path_factory):
    """A second sshd on loopback that takes passwords only (the main one
    takes keys only), for login password tests; stopped after the module."""
    sshd = PrivateSshd(ssh_env, tmp_path_factory.mktemp('password-sshd'), settings=(
        'PasswordAuthentication yes', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication no',
        f"AllowUsers {ssh_env['users']['pw']}"))
    yield {'port': sshd.port, 'known_hosts': str(sshd.known_hosts)}
    sshd.stop()


LOGIN_PASSWORD_PB = """
- hosts: right
  gather_facts: false
  tasks:
    - name: right login password
      svc_identity:
- hosts: wrong
  gather_facts: false
  tasks:
    - name: wrong login password on an alias
      svc_identity:
      ignore_unreachable: true
"""


@pytest.mark.skipif(not shutil.which('sshpass'), reason='vanilla ssh needs sshpass for passwords: run `make env`')
def test_a_wrong_login_password_fails_on_an_alias_already_reached(tmp_path, password_sshd, ssh_env):
    user, right = ssh_env['users']['pw'], ssh_env['users']['pw_password']
    # No ControlMaster: vanilla would run the alias over the master that the
    # right password opened (its ControlPath ignores passwords) and so never
    # check the wrong one. ansible-svc never shares logins across passwords.
    common = (f"ansible_host=127.0.0.1 ansible_port={password_sshd['port']} ansible_user={user} "
              f"ansible_python_interpreter=/usr/bin/python3 ansible_ssh_args='-C -o ControlMaster=no' "
              f"ansible_ssh_common_args='-o UserKnownHostsFile={password_sshd['known_hosts']}'")
    inventory = (f'[right]\nright {common} ansible_password={right}\n'
                 f'[wrong]\nwrong {common} ansible_password={BAD_PASSWORD}\n')
    van, svc = both(tmp_path, LOGIN_PASSWORD_PB, inventory, args=['-vvvv'])
    for run in (van, svc):
        assert run.task('right login password', 'right')['result']['user'] == user
        assert status(run, 'wrong login password on an alias', 'wrong') == 'unreachable'
        assert_no_secret(run, right, BAD_PASSWORD)


# -- interpreters --------------------------------------------------------------

INTERPRETER_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: system python
      svc_identity:
      vars:
        ansible_python_interpreter: /usr/bin/python3
    - name: venv python
      svc_identity:
      vars:
        ansible_python_interpreter: "{{ venv }}/bin/python"
    - name: venv python as become user
      svc_identity:
      become: true
      vars:
        ansible_python_interpreter: "{{ venv }}/bin/python"
- hosts: target
  gather_facts: true
  gather_subset: [min]
  vars:
    ansible_python_interpreter: auto_silent
  tasks:
    - name: discovered python
      svc_identity:
    - name: facts python
      debug:
        var: ansible_facts.python.executable
"""


@pytest.fixture
def venv():
    """A virtualenv of the system python that the test users can reach."""
    path = Path(tempfile.mkdtemp(prefix='svc-venv-', dir='/tmp'))
    os.chmod(path, 0o755)
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--without-pip', str(path / 'venv')], check=True)
    yield path / 'venv'
    shutil.rmtree(path, ignore_errors=True)


def test_interpreters_are_the_ones_asked_for(tmp_path, sshd_alive, ssh_env, venv):
    van, svc = both(tmp_path, INTERPRETER_PB, inventory_for(ssh_env, become=False), extra_vars={'venv': str(venv)})
    for run in (van, svc):
        run.assert_ok()
        assert run.task('system python', 'target')['result']['prefix'] == '/usr'
        for task in ('venv python', 'venv python as become user'):
            assert run.task(task, 'target')['result']['prefix'] == str(venv)
            assert run.task(task, 'target')['result']['executable'] == f'{venv}/bin/python'
    discovered = van.task('discovered python', 'target')['result']['executable']
    assert svc.task('discovered python', 'target')['result']['executable'] == discovered
    facts = van.task('facts python', 'target')['result']['ansible_facts.python.executable']
    assert svc.task('facts python', 'target')['result']['ansible_facts.python.executable'] == facts == discovered


# -- svc_local -------------------------------------------------------------------

LOCAL_PB = """
- hosts: target
  gather_facts: false
  remote_user: svc-nobody-{{ marker }}
  tasks:
    - name: delegated copy
      copy:
        content: hello
        dest: "{{ out }}/copied.txt"
      delegate_to: localhost
    - name: relative copy
      copy:
        content: hello
        dest: relative.txt
      delegate_to: localhost
    - name: delegated identity
      svc_identity:
      delegate_to: localhost
"""


def test_local_ignores_remote_user_and_runs_in_the_playbook_dir(tmp_path, sshd_alive, ssh_env):
    marker = str(os.getpid())
    inventory = inventory_for(ssh_env) + 'localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n'
    runs = {}
    for strategy in ('linear', 'svc_linear'):
        out = tmp_path / strategy / 'out'
        out.mkdir(parents=True)
        cwd = tmp_path / strategy / 'cwd'
        cwd.mkdir()
        runs[strategy] = run = run_playbook(LOCAL_PB, tmp_path=tmp_path / strategy, inventory=inventory,
                                            strategy=strategy, cwd=cwd, env={'ANSIBLE_LIBRARY': str(LIBRARY)},
                                            extra_vars={'marker': marker, 'out': str(out)})
        run.assert_ok()
        assert (out / 'copied.txt').read_text() == 'hello'
        # ActionBase points a `local` connection at the playbook's directory.
        assert (tmp_path / strategy / 'relative.txt').read_text() == 'hello'
        identity = run.task('delegated identity', 'target')['result']
        assert identity['user'] == 'root' and identity['cwd'] == str(tmp_path / strategy)
        strays = [p for p in (tmp_path / strategy).rglob('*') if 'svc-nobody' in p.name]
        assert not strays, strays
