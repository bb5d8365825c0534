"""``ansible_svc.accel.doctor`` (issue 16): how each host is reached, from
the real ``ansible`` and ``ansible-playbook`` against the test sshd. An ssh
host, a become host (to svc-target), a local host, hosts that are not
served (a stock strategy, a connection type we do not serve,
ANSIBLE_SVC_DISABLE), an unreachable one; and the -v line that names the
run's mode once.
"""
from __future__ import annotations

import getpass
import json
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from helpers import REPO, VENV_BIN, connection_only, inventory_for, prepare_playbook, run_playbook

SSH_LOGIN = 'ssh svc-login@127.0.0.1:2222'

#: Where a Python answers the doctor on these hosts: the test sshd runs on
#: this machine, so its /usr/bin/python3 is ours.
PYTHON = '/usr/bin/python3'


def _version(python: str = PYTHON) -> str:
    return subprocess.run([python, '-c', "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _adhoc(tmp_path, inventory, *args, env=None):
    """``ansible all -i INVENTORY ARGS``; ({host: (status, result)}, output)."""
    _, run_env, _ = prepare_playbook('- hosts: all\n', tmp_path=tmp_path, inventory=inventory, env=env)
    run_env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
    proc = subprocess.run([str(VENV_BIN / 'ansible'), 'all', '-i', str(tmp_path / 'inventory.ini'), *args],
                          cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=180)
    output = proc.stdout + proc.stderr
    results = {m.group(1): (m.group(2), json.loads(m.group(3)))
               for m in re.finditer(r'^(\S+) \| ([A-Z]+)!? => (\{.*?^\})$', proc.stdout, re.M | re.S)}
    return results, output


def _fqcn_env(tmp_path):
    """The collection found by its name, from a collections path holding the
    checkout (as an installed collection would be)."""
    collections = tmp_path / 'collections' / 'ansible_collections' / 'ansible_svc'
    collections.mkdir(parents=True)
    (collections / 'accel').symlink_to(REPO)
    return {'ANSIBLE_COLLECTIONS_PATH': str(tmp_path / 'collections')}


def _assert_served(result, host, chain, uid, mode='strategy'):
    assert result['served'] is True and result['mode'] == mode, result
    assert result['chain'] == chain, result
    assert result['python']['executable'] == PYTHON and result['python']['version'] == _version(), result
    assert result['python']['uid'] == uid, result
    assert 0 < result['round_trip_ms'] < 1000, result
    assert result['round_trip_of'] == '5 no-op calls to the interpreter'
    msg = result['msg']
    assert msg[0] == f'{host}: served by ansible-svc', msg
    assert f"  chain:       {' -> '.join(chain)}" in msg, msg
    assert any(line.startswith(f'  interpreter: {PYTHON}, Python {_version()} (CPython), pid ') for line in msg), msg
    assert any(line.startswith('  round trip:  ') and line.endswith('ms (median of 5 no-op calls to the interpreter)')
               for line in msg), msg
    assert any(line.startswith('  mux:         pid %d, ' % result['mux']['pid']) for line in msg), msg
    # The interpreter that answered is in the mux's listing, in use by this task.
    mine = [e for e in result['mux']['interpreters']['listed'] if e['pid'] == result['python']['pid']]
    assert len(mine) == 1 and mine[0]['refs'] >= 1, result['mux']
    assert f"\n    {' -> '.join(chain)}: {PYTHON} (Python {_version()}), pid {result['python']['pid']}, " in '\n'.join(msg), msg
    return mine[0]


def test_adhoc_doctor_by_fqcn_on_an_ssh_and_a_local_host(tmp_path, sshd_alive, ssh_env):
    """``ansible all -m ansible_svc.accel.doctor`` under svc_linear, with the
    run's mode named once at -v."""
    results, output = _adhoc(tmp_path, inventory_for(ssh_env), '-m', 'ansible_svc.accel.doctor', '-v',
                             env=_fqcn_env(tmp_path))
    assert set(results) == {'target', 'local'}, output
    status, target = results['target']
    assert status == 'SUCCESS' and target['changed'] is False, output
    _assert_served(target, 'target', [SSH_LOGIN], pwd.getpwnam('svc-login').pw_uid)
    assert target['reason'] == 'strategy svc_linear serves connection ssh with svc_ssh'
    assert target['connection'] == {'requested': 'ssh', 'plugin': 'svc_ssh'}
    status, local = results['local']
    assert status == 'SUCCESS', output
    _assert_served(local, 'local', [f'local (the controller) as {getpass.getuser()}'], pwd.getpwnam(getpass.getuser()).pw_uid)
    assert local['reason'] == 'strategy svc_linear serves connection local with svc_local'
    # Each host's listing: its own interpreters; both counted.
    for result, transport in ((target, 'ssh'), (local, 'local')):
        assert {e['transport'] for e in result['mux']['interpreters']['listed']} == {transport}
    assert output.count('ansible-svc: strategy svc_linear serves ssh, local and container hosts') == 1, output


BECOME_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: a module first
      command: echo hi
    - name: doctor
      ansible_svc.accel.doctor:
    - name: doctor become
      ansible_svc.accel.doctor:
        round_trips: 5
      become: true
      become_user: svc-target
      when: inventory_hostname == 'target'
"""


@pytest.mark.parametrize('mode', ['strategy', 'connection'])
def test_doctor_of_a_become_host_and_a_local_host(tmp_path, sshd_alive, ssh_env, mode):
    """In a playbook, in both modes: the become task names its sudo hop and
    answers as svc-target, and the mux lists the login and the become
    interpreters of the host."""
    inventory, strategy = inventory_for(ssh_env), 'svc_linear'
    if mode == 'connection':
        inventory, strategy = connection_only(inventory), 'linear'
    run = run_playbook(BECOME_PB, tmp_path=tmp_path, inventory=inventory, strategy=strategy, args=['-v'],
                       env=_fqcn_env(tmp_path)).assert_ok()
    login_uid, target_uid = pwd.getpwnam('svc-login').pw_uid, pwd.getpwnam('svc-target').pw_uid
    plain = run.task('doctor', 'target')['result']
    _assert_served(plain, 'target', [SSH_LOGIN], login_uid, mode)
    became = run.task('doctor become', 'target')['result']
    entry = _assert_served(became, 'target', [SSH_LOGIN, 'sudo as svc-target'], target_uid, mode)
    assert entry['become'] == {'method': 'sudo', 'user': 'svc-target'}
    listed = became['mux']['interpreters']['listed']
    assert sorted((e['user'], (e['become'] or {}).get('user', '')) for e in listed) == [
        ('svc-login', ''), ('svc-login', 'svc-target')], listed
    # The command's module file is cached in the mux by now.
    assert became['mux']['files']['cached'] >= 1 and became['mux']['files']['cached_bytes'] > 0
    local = run.task('doctor', 'local')['result']
    _assert_served(local, 'local', [f'local (the controller) as {getpass.getuser()}'],
                   pwd.getpwnam(getpass.getuser()).pw_uid, mode)
    if mode == 'connection':
        assert plain['reason'] == 'connection svc_ssh is set for this host (connection mode, strategy linear)'
        assert local['reason'] == 'connection svc_local is set for this host (connection mode, strategy linear)'
        assert run.output.count('ansible-svc: connection mode; started the ansible-svc mux for this run') == 1, run.output
        assert 'ansible-svc: strategy' not in run.output
    else:
        assert run.output.count('ansible-svc: strategy svc_linear serves') == 1, run.output
        assert 'ansible-svc: connection mode' not in run.output


def _vanilla_inventory(ssh_env):
    return inventory_for(ssh_env) + 'other ansible_connection=svc_test_vanilla ansible_python_interpreter=/usr/bin/python3\n'


VANILLA_ENV = {'ANSIBLE_CONNECTION_PLUGINS': ':'.join([str(REPO / 'plugins' / 'connection'),
                                                       str(REPO / 'tests' / 'integration' / 'connection_plugins')])}


def _assert_not_served(result, host, mode, chain):
    assert result['served'] is False and result['mode'] == mode, result
    assert result['chain'] == chain, result
    assert result['python'] == {'executable': PYTHON, 'version': _version()}, result
    assert result['round_trip_ms'] > 0 and result['round_trip_of'] == (
        "5 shell commands 'true', run as vanilla runs commands"), result
    assert 'mux' not in result
    assert result['msg'][:2] == [f'{host}: not served by ansible-svc (runs vanilla)', f"  why:         {result['reason']}"]
    assert f'  interpreter: {PYTHON}, Python {_version()}' in result['msg'], result['msg']


def test_doctor_of_hosts_not_served(tmp_path, sshd_alive, ssh_env):
    """Stock linear: ssh and local run vanilla, and the doctor says what to
    change; a connection type ansible-svc does not serve says so."""
    run = run_playbook('- hosts: all\n  gather_facts: false\n  tasks:\n    - name: doctor\n      doctor:\n',
                       tmp_path=tmp_path, inventory=_vanilla_inventory(ssh_env), strategy='linear', args=['-v'],
                       env=VANILLA_ENV).assert_ok()
    target = run.task('doctor', 'target')['result']
    _assert_not_served(target, 'target', 'vanilla', [SSH_LOGIN])
    assert target['reason'] == ("connection ssh under strategy linear, which is Ansible's own: use strategy "
                                "svc_linear, or ansible_connection svc_ssh for this host")
    local = run.task('doctor', 'local')['result']
    _assert_not_served(local, 'local', 'vanilla', [f'local (the controller) as {getpass.getuser()}'])
    assert 'ansible_connection svc_local' in local['reason']
    other = run.task('doctor', 'other')['result']
    _assert_not_served(other, 'other', 'vanilla', ['svc_test_vanilla other'])
    assert other['reason'] == ('connection svc_test_vanilla is not one ansible-svc serves (it serves ssh, local, '
                               'podman, docker and chroot): it runs vanilla')
    assert 'ansible-svc:' not in run.output  # no mux, no mode line


def test_doctor_under_svc_linear_for_a_connection_not_served(tmp_path, sshd_alive, ssh_env):
    """In a play that serves its ssh host, a host of another connection type
    runs vanilla beside it, and the doctor says which is which."""
    results, output = _adhoc(tmp_path, _vanilla_inventory(ssh_env), '-m', 'doctor', env=VANILLA_ENV)
    assert results['target'][1]['served'] is True, output
    other = results['other'][1]
    assert results['other'][0] == 'SUCCESS', output
    _assert_not_served(other, 'other', 'vanilla', ['svc_test_vanilla other'])
    assert 'is not one ansible-svc serves' in other['reason']


@pytest.mark.parametrize('mode', ['svc_linear', 'connection'])
def test_doctor_when_switched_off(tmp_path, sshd_alive, ssh_env, mode):
    """ANSIBLE_SVC_DISABLE=1: not served, and why, in both modes."""
    inventory, strategy = inventory_for(ssh_env), 'svc_linear'
    if mode == 'connection':
        inventory, strategy = connection_only(inventory), 'linear'
    results, output = _adhoc(tmp_path, inventory, '-m', 'doctor', '-v',
                             env={'ANSIBLE_SVC_DISABLE': '1', 'ANSIBLE_STRATEGY': strategy})
    target, local = results['target'][1], results['local'][1]
    _assert_not_served(target, 'target', 'off', [SSH_LOGIN])
    _assert_not_served(local, 'local', 'off', [f'local (the controller) as {getpass.getuser()}'])
    if mode == 'connection':
        assert target['reason'] == 'ANSIBLE_SVC_DISABLE is set: svc_ssh hands every operation to ansible.builtin.ssh'
        assert local['reason'] == 'ANSIBLE_SVC_DISABLE is set: svc_local hands every operation to ansible.builtin.local'
    else:
        assert target['reason'] == ("ANSIBLE_SVC_DISABLE is set: connection ssh runs vanilla and strategy svc_linear "
                                    "runs as Ansible's own")
    assert 'ansible-svc:' not in output


@pytest.mark.parametrize('strategy', ['svc_linear', 'linear'])
def test_doctor_of_an_unreachable_host_fails_with_its_chain(tmp_path, sshd_alive, ssh_env, strategy):
    """Served or not, the task fails (not only UNREACHABLE) and still says
    how the host was to be reached, with ssh's words on lines of their own."""
    results, output = _adhoc(tmp_path, inventory_for(ssh_env, extra='ansible_port=1'), '-m', 'doctor',
                             '--limit', 'target', env={'ANSIBLE_STRATEGY': strategy})
    status, result = results['target']
    assert status == 'FAILED', output
    assert result['served'] is (strategy == 'svc_linear') and result['chain'] == ['ssh svc-login@127.0.0.1:1'], result
    assert 'Connection refused' in result['error'], result
    assert any(line.startswith('  error:       ') for line in result['msg']), result['msg']
    assert 'python' not in result and 'round_trip_ms' not in result
    # ssh's own words, on a line of their own.
    assert any(line.strip().endswith('ssh: connect to host 127.0.0.1 port 1: Connection refused')
               for line in result['msg']), result['msg']


def test_doctor_shows_no_password(tmp_path, sshd_alive, ssh_env):
    """A become password (sudo asks svc-pw for it) reaches the become
    interpreter, and no byte of it the doctor's result or the run's output,
    at -vvvv."""
    user, password = ssh_env['users']['pw'], ssh_env['users']['pw_password']
    pb = """
- hosts: target
  gather_facts: false
  tasks:
    - name: doctor
      doctor:
      become: true
      vars:
        ansible_become_password: "{{ secret }}"
"""
    run = run_playbook(pb, tmp_path=tmp_path, inventory=inventory_for(ssh_env, user=user), args=['-vvvv'],
                       extra_vars={'secret': password}).assert_ok()
    result = run.task('doctor', 'target')['result']
    _assert_served(result, 'target', [f'ssh {user}@127.0.0.1:2222', 'sudo as root'], 0)
    assert password not in json.dumps(result)
    assert password not in run.stdout.replace(f"'secret': '{password}'", '') and password not in run.stderr
    assert password not in Path(tmp_path / 'results.jsonl').read_text()
