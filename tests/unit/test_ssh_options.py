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


class _Sink:
    def __init__(self):
        self.written = b''

    def write(self, data):
        self.written += data


def _prompted(line, password_prompt):
    """What the ssh setup protocol types when ssh's tty shows `line`."""
    protocol = ssh.SetupProtocol()
    if password_prompt:
        protocol.add_password_prompt(password_prompt)
    sink = _Sink()

    class Stream:
        name = 'test'
        transmit_side = sink
        conn = type('Conn', (), {'options': type('Options', (), {'password': 'pin-1234'})()})()

    protocol.stream = Stream()
    protocol.on_partial_line_received(line)
    return sink.written


def test_the_users_password_prompt_is_answered_as_ssh_s_own():
    assert _prompted(b'Enter PIN for token: ', 'Enter PIN for') == b'pin-1234\n'
    assert _prompted(b'Enter PIN for token: ', None) == b''  # mitogen knows only "password"
    assert _prompted(b"svc@h's password: ", 'Enter PIN for') == b'pin-1234\n'  # ssh's own still answered


def test_the_password_prompt_option_reaches_the_connection():
    assert ssh.SshConnection.options_class(hostname='h', python_path=['python3'], max_message_size=1,
                                           password_prompt='PIN:').password_prompt == 'PIN:'
