"""Load the svc_ssh plugin through ansible's loader and build its spec."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def loaded_plugins():
    from ansible.plugins.loader import connection_loader, init_plugin_loader
    init_plugin_loader()
    connection_loader.add_directory(str(REPO / 'plugins' / 'connection'))
    return connection_loader


def _connection(loader, name):
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import shell_loader
    conn = loader.get(name, PlayContext(), None)
    assert conn is not None, f'{name} not found'
    conn._shell = conn._shell or shell_loader.get('sh')
    return conn


def test_svc_ssh_spec(loaded_plugins):
    conn = _connection(loaded_plugins, 'svc_ssh')
    assert type(conn).__module__.endswith('svc_ssh')
    conn.set_options(var_options={
        'ansible_host': '10.1.2.3', 'ansible_port': 2200, 'ansible_user': 'deploy',
        'ansible_ssh_private_key_file': '/keys/id', 'ansible_ssh_common_args': '-o UserKnownHostsFile=/kh',
        'ansible_ssh_extra_args': '-oControlPath=/tmp/x', 'ansible_host_key_checking': False,
        'ansible_python_interpreter': '/usr/bin/python3',
    })
    s = conn.build_spec()
    assert s['transport'] == 'ssh'
    assert (s['host'], s['port'], s['user']) == ('10.1.2.3', 2200, 'deploy')
    assert s['identity_file'] == '/keys/id'
    # Default ssh_args (-C -o ControlMaster=auto -o ControlPersist=60s) minus the ControlMaster family;
    # the user's ControlPath is kept, never to start a master.
    assert s['ssh_args'] == ['-C', '-o', 'UserKnownHostsFile=/kh', '-o', 'ControlPath=/tmp/x', '-o', 'ControlMaster=no']
    assert s['check_host_keys'] == 'ignore'
    assert s['default_python'] == '/usr/bin/python3'
    for value in (s['host'], s['user'], s['identity_file']):
        assert type(value) is str


def test_svc_ssh_defaults_check_host_keys(loaded_plugins):
    conn = _connection(loaded_plugins, 'svc_ssh')
    conn.set_options(var_options={'ansible_host': 'h'})
    s = conn.build_spec()
    assert s['check_host_keys'] == 'enforce'
    assert s['ssh_args'] == ['-C']
    assert s['default_python'] is None


def test_svc_local_spec(loaded_plugins):
    conn = _connection(loaded_plugins, 'svc_local')
    conn.set_options(var_options={'ansible_python_interpreter': 'auto_silent'})
    s = conn.build_spec()
    assert s['transport'] == 'local' and s['default_python'] is None
