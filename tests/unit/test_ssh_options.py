"""The user's ssh -o options win over mitogen's own (target/ssh.py)."""
from __future__ import annotations

import mitogen.master
import pytest

from ansible_svc.target import ssh


@pytest.mark.parametrize('args', [
    ['-o', 'ServerAliveInterval=5'],
    ['-oServerAliveInterval=5'],
    ['-C', '-o', 'serveralivecountmax 2'],
    ['-o', 'ServerAliveInterval', '-x'],
])
def test_set(args):
    assert ssh.option_names(args) & {'serveraliveinterval', 'serveralivecountmax'}


@pytest.mark.parametrize('args', [None, [], ['-C', '-o', 'ControlMaster=auto'], ['ServerAliveInterval=5'],
                                  ['-o', 'ServerAliveIntervalX=5'], ['-o']])
def test_not_set(args):
    assert not ssh.option_names(args) & {'serveraliveinterval', 'serveralivecountmax'}


def _boot_command(**options):
    broker = mitogen.master.Broker()
    try:
        router = mitogen.master.Router(broker)
        conn = ssh.SshConnection(ssh.SshConnection.options_class(
            hostname='h', python_path=['python3'], max_message_size=1 << 20, old_router=router, **options), router)
        conn.context = router.context_class(router, 42)  # what connect() sets first
        return conn.get_boot_command()
    finally:
        broker.shutdown()
        broker.join()


def _options(argv):
    """The -o values of an ssh command line, up to the host name."""
    argv = argv[:argv.index('h')]
    return [argv[i + 1] for i, a in enumerate(argv) if a == '-o']


def test_mitogen_options_stay_when_the_user_sets_none():
    got = _options(_boot_command(check_host_keys='enforce', ssh_args=['-C']))
    assert 'StrictHostKeyChecking yes' in got and 'ServerAliveInterval 15' in got and 'LogLevel ERROR' in got


def test_the_users_host_key_and_keepalive_options_win():
    """As in vanilla, where the user's StrictHostKeyChecking=no in
    ssh_common_args connects to a host whose key is unknown."""
    user = ['-o', 'StrictHostKeyChecking=no', '-oUserKnownHostsFile=/tmp/kh', '-o', 'ServerAliveInterval 2']
    argv = _boot_command(check_host_keys='ignore', ssh_args=user)
    got = _options(argv)
    assert got == ['LogLevel ERROR', 'Compression yes', 'ServerAliveCountMax 3', 'BatchMode yes',
                   'GlobalKnownHostsFile /dev/null', 'StrictHostKeyChecking=no', 'ServerAliveInterval 2']
    assert argv[argv.index('h') - len(user):argv.index('h')] == user
