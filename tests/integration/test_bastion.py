"""Bastion chains (``svc_via`` / ``mitogen_via``, issue 14), in network
namespaces: the controller reaches the bastion's namespace only; the target's
namespace is reachable only from the bastion's. Compared with vanilla through
an ssh ProxyCommand over the same bastion.

    controller --veth--> bastion (sshd) --veth--> target (sshd)
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import PrivateSshd, assert_same_results, run_playbook

# Bastion hops: no ansible-core code takes part (see conftest.py).
pytestmark = pytest.mark.newest_core_only

_SERIAL = itertools.count()


def _ip(*args, check=True):
    return subprocess.run(['ip', *args], check=check, capture_output=True, text=True)


class Network:
    """Two namespaces behind the controller, each with an sshd; files that
    the bastion's own ssh (run as the login user there) can read."""

    def __init__(self, ssh_env, home: Path):
        serial = next(_SERIAL)
        tag = f'{os.getpid() % 10000}x{serial}'
        self.ns = {'bastion': f'svc-bas-{tag}', 'target': f'svc-tgt-{tag}'}
        self.links = [(f'svcb{tag}', f'svcB{tag}'), (f'svcc{tag}', f'svcT{tag}')]
        net = f'10.{150 + serial % 50}.{os.getpid() % 250}'
        # The bastion's address for the controller, and on the target's side.
        self.bastion, self.bastion_inside, self.target = f'{net}.2', f'{net}.5', f'{net}.6'
        self.sshds = []
        for ns in self.ns.values():
            _ip('netns', 'add', ns)
        # controller <-> bastion: .1/.2; bastion <-> target: .5/.6
        _ip('link', 'add', self.links[0][0], 'type', 'veth', 'peer', 'name', self.links[0][1], 'netns', self.ns['bastion'])
        _ip('addr', 'add', f'{net}.1/30', 'dev', self.links[0][0])
        _ip('link', 'set', self.links[0][0], 'up')
        _ip('-n', self.ns['bastion'], 'addr', 'add', f'{net}.2/30', 'dev', self.links[0][1])
        _ip('-n', self.ns['bastion'], 'link', 'set', self.links[0][1], 'up')
        _ip('-n', self.ns['bastion'], 'link', 'add', self.links[1][0], 'type', 'veth', 'peer', 'name', self.links[1][1],
            'netns', self.ns['target'])
        _ip('-n', self.ns['bastion'], 'addr', 'add', f'{net}.5/30', 'dev', self.links[1][0])
        _ip('-n', self.ns['bastion'], 'link', 'set', self.links[1][0], 'up')
        _ip('-n', self.ns['target'], 'addr', 'add', f'{net}.6/30', 'dev', self.links[1][1])
        _ip('-n', self.ns['target'], 'link', 'set', self.links[1][1], 'up')
        for ns in self.ns.values():
            _ip('-n', ns, 'link', 'set', 'lo', 'up')
        # Readable by the login user on the bastion, whose ssh logs in to
        # the target (the key is the test environment's).
        self.files = Path(tempfile.mkdtemp(prefix='svc-bastion-'))
        os.chmod(self.files, 0o755)
        self.key = self.files / 'id_ed25519'
        shutil.copy(ssh_env['key'], self.key)
        shutil.chown(self.key, 'svc-login')
        os.chmod(self.key, 0o600)
        self.known_hosts = self.files / 'known_hosts'
        for name, address in (('bastion', self.bastion), ('target', self.target)):
            sshd = PrivateSshd(ssh_env, home / name, address=address, port=22, netns=self.ns[name])
            self.sshds.append(sshd)
            with open(self.known_hosts, 'a') as fp:
                fp.write(sshd.known_hosts.read_text())
        os.chmod(self.known_hosts, 0o644)

    def close(self):
        for sshd in self.sshds:
            sshd.stop()
        for ns in self.ns.values():
            for pid in _ip('netns', 'pids', ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
        _ip('link', 'delete', self.links[0][0], check=False)
        for ns in self.ns.values():
            _ip('netns', 'delete', ns, check=False)
        shutil.rmtree(self.files, ignore_errors=True)

    def host(self, name, user='svc-login', ssh_args='', extra=''):
        return (f'{name} ansible_host={self.target} ansible_port=22 ansible_user={user} '
                f'ansible_ssh_private_key_file={self.key} ansible_python_interpreter=/usr/bin/python3 '
                f"ansible_ssh_common_args='-o UserKnownHostsFile={self.known_hosts}{ssh_args}' {extra}")

    def proxy_command(self):
        """vanilla's way through the bastion (ProxyJump would not pass -i on)."""
        return (f' -o ProxyCommand="ssh -i {self.key} -o UserKnownHostsFile={self.known_hosts} '
                f'-W %h:%p svc-login@{self.bastion}"')

    def net_inode(self, name):
        return os.stat(f'/run/netns/{self.ns[name]}').st_ino


@pytest.fixture
def network(ssh_env, sshd_alive, tmp_path):
    net = Network(ssh_env, tmp_path)
    try:
        yield net
    finally:
        net.close()


PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: reached from
      shell: echo "$SSH_CONNECTION" | cut -d' ' -f1,3
      changed_when: false
    - name: user
      command: id -un
    - name: module
      setup:
        gather_subset: [min]
        filter: [ansible_user_id]
    - name: become
      command: id -un
      become: true
      when: ansible_user == 'svc-login'
    - name: loop
      command: echo {{ item }}
      loop: [1, 2, 3]
"""


def test_the_target_is_out_of_the_controllers_reach(network, tmp_path):
    inventory = network.host('target', extra='ansible_ssh_timeout=2') + '\n'
    run = run_playbook(PB, tmp_path=tmp_path, inventory=inventory, timeout=120)
    assert run.task('reached from')['status'] == 'unreachable', run.output


@pytest.mark.parametrize('variable', ['svc_via', 'mitogen_via'])
def test_through_a_bastion_as_vanilla_through_a_proxy_command(network, tmp_path, variable):
    ours = '\n'.join([network.host('target', extra=f'{variable}=svc-login@{network.bastion}'),
                      network.host('other', user='svc-pw', extra=f'{variable}=svc-login@{network.bastion}'), ''])
    vanilla = '\n'.join([network.host('target', ssh_args=network.proxy_command()),
                         network.host('other', user='svc-pw', ssh_args=network.proxy_command()), ''])
    runs = {'linear': run_playbook(PB, tmp_path=tmp_path / 'vanilla', strategy='linear', inventory=vanilla),
            'svc_linear': run_playbook(PB, tmp_path=tmp_path / 'svc', inventory=ours)}
    for strategy, run in runs.items():
        run.assert_ok()
        for host, user in (('target', 'svc-login'), ('other', 'svc-pw')):
            # The target's sshd saw the login come from the bastion's side.
            expected = f'{network.bastion_inside} {network.target}'
            assert run.task('reached from', host)['result']['stdout'] == expected, (strategy, run.output)
            assert run.task('user', host)['result']['stdout'] == user
        assert run.task('become', 'target')['result']['stdout'] == 'root'
    assert_same_results(runs['linear'], runs['svc_linear'])


def test_one_bastion_interpreter_serves_every_host_behind_it(network, tmp_path):
    hosts = [network.host(f'h{i}', user=user, extra=f'svc_via=svc-login@{network.bastion}')
             for i, user in enumerate(['svc-login', 'svc-pw', 'svc-login', 'svc-pw'])]
    pb = PB + """
    - name: bastion interpreters
      # Interpreters only, not the task children they fork.
      shell: >-
        for p in $(pgrep -u svc-login -f 'mitogen:ansible-svc'); do
        grep -q mitogen:ansible-svc /proc/$(cut -d' ' -f4 /proc/$p/stat)/cmdline && continue;
        stat -L -c %i /proc/$p/ns/net; done
      delegate_to: localhost
      run_once: true
      changed_when: false
"""
    inventory = '\n'.join(hosts + ['localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3', ''])
    run = run_playbook(pb.replace('hosts: all', 'hosts: all:!localhost'), tmp_path=tmp_path, inventory=inventory).assert_ok()
    inodes = run.task('bastion interpreters')['result']['stdout'].split()
    assert inodes.count(str(network.net_inode('bastion'))) == 1, inodes
    # svc-login's login interpreter on the target, shared by h0 and h2.
    assert inodes.count(str(network.net_inode('target'))) == 1, inodes
