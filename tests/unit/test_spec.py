from __future__ import annotations

import pytest

from ansible_svc.controller import spec


@pytest.mark.parametrize('args,want', [
    ('-C -o ControlMaster=auto -o ControlPersist=60s', ['-C']),
    # A ControlPath is kept, never to start a master: only to use an existing one.
    ('-oControlMaster=auto -oControlPersist=60s -oControlPath=/x/%h', ['-o', 'ControlPath=/x/%h', '-o', 'ControlMaster=no']),
    ('-o ControlPath=/tmp/%C -o ServerAliveInterval=5',
     ['-o', 'ControlPath=/tmp/%C', '-o', 'ControlMaster=no', '-o', 'ServerAliveInterval=5']),
    ('-o "ControlPersist 30" -o controlmaster=no -o CONTROLPATH=none', ['-o', 'CONTROLPATH=none', '-o', 'ControlMaster=no']),
    ('-oUserKnownHostsFile=/k -C -v', ['-o', 'UserKnownHostsFile=/k', '-C', '-v']),
    ('-o StrictHostKeyChecking=no', ['-o', 'StrictHostKeyChecking=no']),
])
def test_split_ssh_args_drops_control_options(args, want):
    assert spec.split_ssh_args(args) == want


def test_split_ssh_args_joins_and_skips_empty():
    got = spec.split_ssh_args('-C -o ControlMaster=auto', None, '', "-o 'ProxyCommand=ssh -W %h:%p jump'")
    assert got == ['-C', '-o', 'ProxyCommand=ssh -W %h:%p jump']


def test_split_ssh_args_keeps_option_values_that_look_like_control():
    # Only the option name counts, not a value mentioning it.
    assert spec.split_ssh_args('-o SetEnv=X=ControlMaster') == ['-o', 'SetEnv=X=ControlMaster']


def test_plain_strips_tagged_types():
    from ansible._internal._datatag._tags import Origin
    tagged = Origin(path='/x').tag('s')
    assert type(tagged) is not str and isinstance(tagged, str)
    value = {Origin(path='/k').tag('key'): [tagged, (Origin(path='/y').tag('t'), 3, None, True, 1.5, b'b')]}
    out = spec.plain(value)
    assert out == {'key': ['s', ['t', 3, None, True, 1.5, b'b']]}
    (key, items), = out.items()
    assert type(key) is str
    assert type(items[0]) is str and type(items[1][0]) is str
    assert type(items[1][1]) is int and items[1][3] is True
    import pickle
    assert b'ansible' not in pickle.dumps(out)


def test_plain_tagged_int():
    from ansible._internal._datatag._tags import Origin
    tagged = Origin(path='/x').tag(2222)
    assert type(spec.plain(tagged)) is int and spec.plain(tagged) == 2222


@pytest.mark.parametrize('value,want', [
    (None, None), ('', None), ('auto', None), ('auto_silent', None), (' auto ', None),
    ('/usr/bin/python3', '/usr/bin/python3'), (' python3 ', 'python3'), ('/usr/bin/env python3', '/usr/bin/env python3'),
])
def test_python_for(value, want):
    assert spec.python_for(value) == want


def test_auto_legacy_is_discovery_only_where_the_core_says_so():
    from ansible_svc.controller import compat
    legacy = 'auto_legacy' in compat.adapter().discovery_values
    assert spec.python_for('auto_legacy') == (None if legacy else 'auto_legacy')
    assert legacy == (compat.adapter().series < (2, 21))


def test_ssh_spec_from_options():
    opts = {'host': 'h', 'port': 22, 'remote_user': 'u', 'password': None, 'private_key_file': '/k',
            'ssh_executable': None, 'ssh_args': '-C -o ControlPersist=60s', 'ssh_common_args': '-o A=b',
            'ssh_extra_args': '', 'host_key_checking': False, 'timeout': 7, 'python_interpreter': 'auto',
            'keepalive_interval': 20, 'keepalive_count': 4}
    s = spec.ssh_spec(opts.get)
    assert s == {'transport': 'ssh', 'host': 'h', 'port': 22, 'user': 'u', 'password': None, 'identity_file': '/k',
                 'ssh_path': 'ssh', 'ssh_args': ['-C', '-o', 'A=b'], 'check_host_keys': 'ignore', 'timeout': 7,
                 'keepalive_interval': 20, 'keepalive_count': 4, 'default_python': None, 'via': [],
                 'password_prompt': None, 'retries': 0}
    opts['host_key_checking'] = True
    opts['password'] = 'pw'
    s = spec.ssh_spec(opts.get)
    assert s['check_host_keys'] == 'enforce'
    import mitogen.core
    assert isinstance(s['password'], mitogen.core.Secret) and s['password'] == 'pw'
    assert 'pw' not in repr(s['password'])


def test_password_mechanism_disable_types_no_password():
    opts = {'host': 'h', 'password': 'pw', 'password_mechanism': 'disable', 'ssh_args': ''}
    assert spec.ssh_spec(opts.get)['password'] is None
    opts['password_mechanism'] = 'sshpass'
    assert spec.ssh_spec(opts.get)['password'] == 'pw'


def test_a_pkcs11_token_logs_in_with_its_pin_as_vanilla():
    from ansible.errors import AnsibleError

    opts = {'host': 'h', 'password': '1234', 'pkcs11_provider': '/lib/p11.so', 'ssh_args': '-C'}
    s = spec.ssh_spec(opts.get)
    assert s['ssh_args'] == spec.PKCS11_ARGS + ['-o', 'PKCS11Provider=/lib/p11.so', '-C']
    assert s['password'] == '1234' and s['password_prompt'] == 'Enter PIN for '
    opts['sshpass_prompt'] = 'PIN:'
    assert spec.ssh_spec(opts.get)['password_prompt'] == 'PIN:'
    with pytest.raises(AnsibleError, match='pkcs11_provider you must specify a password'):
        spec.ssh_spec(dict(opts, password=None).get)


@pytest.mark.parametrize('name,value', [('verbosity', 3), ('scp_extra_args', '-l 8000'), ('sftp_extra_args', '-l 80')])
def test_an_unserved_ssh_option_is_refused_by_name(name, value):
    from ansible.errors import AnsibleError

    opts = {'host': 'h', name: value}
    with pytest.raises(AnsibleError, match='ssh option %s' % name):
        spec.ssh_spec(opts.get)
    opts[name] = 0 if name == 'verbosity' else ''
    spec.ssh_spec(opts.get)


@pytest.mark.parametrize('args,want', [
    ('-C -o ControlMaster=auto -o ControlPersist=60s', b'Shared connection to h closed.\r\n'),
    ('-C', b'Connection to h closed.\r\n'),
    ('-o ControlMaster=auto', b'Connection to h closed.\r\n'),
    ('-o ControlMaster=auto -o ControlPersist=no', b'Connection to h closed.\r\n'),
    ('-qC -o ControlMaster=auto -o ControlPersist=60s', b''),
    ('-o LogLevel=ERROR', b''),
    ('-o LogLevel=INFO -o LogLevel=QUIET', b'Connection to h closed.\r\n'),  # ssh: the first one wins
    ('-o LogLevel=VERBOSE', b'Connection to h closed.\r\n'),
])
def test_the_tty_closed_notice_is_the_one_vanillas_ssh_prints(args, want):
    assert spec.tty_closed_notice({'host': 'h', 'ssh_args': args}.get) == want


def test_via_hops():
    from ansible.errors import AnsibleError

    assert spec.via_hops('ops@bastion:2222, inner ,[fd00::1]:23', 'me') == [
        {'host': 'bastion', 'port': 2222, 'user': 'ops'},
        {'host': 'inner', 'port': 22, 'user': 'me'},
        {'host': 'fd00::1', 'port': 23, 'user': 'me'},
    ]
    assert spec.via_hops(None, 'me') == [] and spec.via_hops(' , ', 'me') == []
    for bad in ('a@b:port', 'a@@b', '[::1'):
        with pytest.raises(AnsibleError, match='svc_via'):
            spec.via_hops(bad, 'me')


@pytest.mark.parametrize('name', sorted(spec.UNSERVED_REFERENCE_OPTIONS))
def test_an_unserved_reference_variable_is_refused_by_name(name):
    from ansible.errors import AnsibleError

    opts = {name: 'x'}
    with pytest.raises(AnsibleError, match=name):
        spec.ssh_spec(opts.get)


def test_key_data_logs_in_with_the_agents_key():
    base = {'identity_file': '/k', 'ssh_args': ['-C']}
    s = spec.with_agent_key(base, '/tmp/SHA256:x.pub', '/tmp/agent.sock')
    assert s['identity_file'] == '/tmp/SHA256:x.pub'
    assert s['ssh_args'] == ['-C', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=/tmp/agent.sock']
    assert base['ssh_args'] == ['-C']  # not changed in place
    assert spec.with_agent_key(base, '/p.pub', None)['ssh_args'] == ['-C', '-o', 'IdentitiesOnly=yes']
