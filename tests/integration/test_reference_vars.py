"""The reference's (Mitogen for Ansible's) variables: honoured under our
names, or refused with a message, never silently ignored (issue 14)."""
from __future__ import annotations

from helpers import inventory_for, run_playbook

WHERE_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: interpreter
      raw: echo $PPID
    - name: reference inline
      shell: echo $PPID
      vars:
        mitogen_task_isolation: inline
    - name: ours wins
      shell: echo $PPID
      vars:
        mitogen_task_isolation: inline
        svc_task_isolation: fork
"""


def test_mitogen_task_isolation_is_an_alias(tmp_path, sshd_alive, ssh_env):
    r = run_playbook(WHERE_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env)).assert_ok()
    for host in ('target', 'local'):
        interpreter = r.task('interpreter', host)['result']['stdout'].strip()
        assert r.task('reference inline', host)['result']['stdout'].strip() == interpreter, host
        assert r.task('ours wins', host)['result']['stdout'].strip() != interpreter, host


KEEPALIVE_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: ssh client
      shell: "ps -eo args | grep -- 'ServerAliveInterval {{ marker }}' | grep -v grep"
"""


def test_keepalive_settings_reach_ssh(tmp_path, sshd_alive, ssh_env):
    """The interval by our name, the count by the reference's: both on the
    command line of the ssh client that carries the target's interpreter."""
    marker = 37
    inv = inventory_for(ssh_env, extra=f'svc_ssh_keepalive_interval={marker} mitogen_ssh_keepalive_count=5')
    r = run_playbook(KEEPALIVE_PB, tmp_path=tmp_path, inventory=inv, extra_vars={'marker': marker}).assert_ok()
    line = r.task('ssh client')['result']['stdout']
    assert line.startswith('ssh ') and 'ServerAliveCountMax 5' in line, line


PING_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: module parent
      shell: "tr '\\\\0' ' ' < /proc/$PPID/cmdline"
"""


def test_mitogen_via_goes_through_the_bastion_never_around_it(tmp_path, sshd_alive, ssh_env):
    """An alias of svc_via (test_bastion.py): with a bastion that does not
    resolve, the host is unreachable for the bastion's sake, where
    connecting directly would have worked; the other host runs."""
    inv = inventory_for(ssh_env, extra='mitogen_via=svc-login@bastion.invalid')
    r = run_playbook(PING_PB, tmp_path=tmp_path, inventory=inv)
    lost = r.task('module parent', 'target')
    assert lost['status'] == 'unreachable', lost
    assert 'bastion.invalid' in lost['result']['msg'], lost
    assert r.task('module parent', 'local')['status'] == 'changed'


def test_reference_connection_names_are_served(tmp_path, sshd_alive, ssh_env):
    """ansible_connection: mitogen_ssh / mitogen_local under a svc_*
    strategy, with no reference installed on the plugin path."""
    inv = inventory_for(ssh_env, extra='ansible_connection=mitogen_ssh').replace(
        'ansible_connection=local', 'ansible_connection=mitogen_local')
    r = run_playbook(PING_PB, tmp_path=tmp_path, inventory=inv).assert_ok()
    for host in ('target', 'local'):
        assert 'mitogen:ansible-svc' in r.task('module parent', host)['result']['stdout'], host


HOSTKEY_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: whoami
      command: id -un
"""


def test_the_users_host_key_options_win_as_in_vanilla(tmp_path, sshd_alive, ssh_env):
    """host_key_checking is on, the host's key is known nowhere, and the
    user's own ssh arguments say not to check it: vanilla connects, so must
    we (mitogen's own StrictHostKeyChecking came first and won)."""
    line = inventory_for(ssh_env).splitlines()[1]
    line = line.replace(f"-o UserKnownHostsFile={ssh_env['known_hosts']}",
                        '-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no')
    assert 'StrictHostKeyChecking=no' in line
    inv = f'[all]\n{line}\n'
    # No ControlMaster: vanilla must log in afresh, not ride an earlier one.
    env = {'ANSIBLE_SSH_ARGS': '-C -o ControlMaster=no'}
    for strategy in ('linear', 'svc_linear'):
        r = run_playbook(HOSTKEY_PB, tmp_path=tmp_path / strategy, inventory=inv, strategy=strategy, env=env).assert_ok()
        assert r.task('whoami')['result']['stdout'] == 'svc-login', strategy
    # And without the user's options, the unknown key is refused by both.
    strict = f"[all]\n{line.replace('-o StrictHostKeyChecking=no', '')}\n"
    for strategy in ('linear', 'svc_linear'):
        r = run_playbook(HOSTKEY_PB, tmp_path=tmp_path / f'strict-{strategy}', inventory=strict, strategy=strategy,
                         env=env)
        assert r.task('whoami')['status'] == 'unreachable', strategy
