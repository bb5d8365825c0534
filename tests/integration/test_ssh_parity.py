"""ssh options against vanilla (issue 14): key data with a passphrase, a
password prompt of the user's own (``sshpass_prompt``), a PKCS11 token's
PIN, ``password_mechanism``, the terminal of ``raw`` and ``script``
(``use_tty``), a ControlPath of the user's, and options refused by name."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from helpers import assert_same_results, inventory_for, run_playbook

PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: user
      command: id -un
"""


def _inventory(ssh_env):
    line = inventory_for(ssh_env).splitlines()[1]
    words = [w for w in line.split(' ') if not w.startswith('ansible_ssh_private_key_file=')]
    return '[all]\n' + ' '.join(words) + '\n'


@pytest.mark.parametrize('passphrase', ['right', 'wrong'])
def test_key_data_with_a_passphrase_as_vanilla(ssh_env, sshd_alive, tmp_path, passphrase):
    """ansible-core adds key data to the run's ssh-agent (``SSH_AGENT=auto``).
    The key is the test environment's own, re-encrypted with a passphrase,
    and no key file is named: the login can only come from the key data."""
    key = tmp_path / 'key'
    shutil.copy(ssh_env['key'], key)
    key.chmod(0o600)
    subprocess.run(['ssh-keygen', '-q', '-p', '-P', '', '-N', 'a secret phrase', '-f', str(key)], check=True)
    extra_vars = {'ansible_ssh_private_key': key.read_text(),
                  'ansible_ssh_private_key_passphrase': 'a secret phrase' if passphrase == 'right' else 'nope'}
    runs = {}
    for s in ('linear', 'svc_linear'):
        # The agent's socket lives in the local temp dir, and a unix socket
        # path must stay under 108 bytes: pytest's tmp_path is too deep.
        with tempfile.TemporaryDirectory(prefix='svc-agent-', dir='/tmp') as local_tmp:
            env = {'ANSIBLE_SSH_AGENT': 'auto', 'SSH_AUTH_SOCK': None, 'ANSIBLE_LOCAL_TEMP': local_tmp}
            runs[s] = run_playbook(PB, tmp_path=tmp_path / s, strategy=s, inventory=_inventory(ssh_env),
                                   extra_vars=extra_vars, env=env)
    for strategy, run in runs.items():
        user = run.task('user', 'target')
        if passphrase == 'right':
            assert user['result']['stdout'] == 'svc-login', (strategy, run.output)
        else:
            assert user['status'] == 'unreachable', (strategy, run.output)
            assert 'Failed to add configured private key into ssh-agent' in user['result']['msg'], user
        assert 'a secret phrase' not in run.stdout + run.stderr
    assert_same_results(runs['linear'], runs['svc_linear'], drop={'msg'})


#: An ssh that first asks for a PIN, as ssh does for a token's: through
#: SSH_ASKPASS when it is forced (vanilla's default mechanism), else on the
#: terminal (sshpass, ours). With a PKCS11 provider named it insists on it
#: and on key-only logins, as vanilla passes them, then drops the provider
#: (there is no token here) and logs in with the test key.
PIN_SSH = """#!/bin/sh
prompt="Enter PIN for test token: "
if [ -n "$NEED_PROVIDER" ]; then
    case " $* " in
        *" PKCS11Provider=$NEED_PROVIDER "*" PasswordAuthentication=no "*|*" PasswordAuthentication=no "*" PKCS11Provider=$NEED_PROVIDER "*) ;;
        *) echo "no PKCS11Provider=$NEED_PROVIDER with PasswordAuthentication=no in: $*" >&2; exit 255 ;;
    esac
fi
if [ "$SSH_ASKPASS_REQUIRE" = force ] && [ -n "$SSH_ASKPASS" ]; then
    pin=$("$SSH_ASKPASS" "$prompt")
else
    printf '%s' "$prompt" >/dev/tty
    read -r pin </dev/tty
fi
[ "$pin" = "4321" ] || { echo "wrong PIN" >&2; exit 255; }
for arg in "$@"; do
    shift
    case "$arg" in PKCS11Provider=*) arg="PKCS11Provider=none" ;; esac
    set -- "$@" "$arg"
done
exec ssh "$@"
"""


def _pin_ssh(tmp_path):
    wrapper = tmp_path / 'pin-ssh'
    wrapper.write_text(PIN_SSH)
    wrapper.chmod(0o755)
    return wrapper


def _both(pb, tmp_path, **kwargs):
    return {s: run_playbook(pb, tmp_path=tmp_path / s, strategy=s, timeout=120, **kwargs)
            for s in ('linear', 'svc_linear')}


def test_the_users_password_prompt_is_answered_as_in_vanilla(ssh_env, sshd_alive, tmp_path):
    """Vanilla's sshpass or askpass waits for ``sshpass_prompt``; ours
    answers it as it answers ssh's own password prompt."""
    inventory = inventory_for(ssh_env, extra=f"ansible_ssh_executable={_pin_ssh(tmp_path)} ansible_password=4321 "
                                             "ansible_sshpass_prompt='Enter PIN for'")
    runs = _both(PB, tmp_path, inventory=inventory)
    for strategy, run in runs.items():
        assert run.task('user', 'target')['result']['stdout'] == 'svc-login', (strategy, run.output)
    assert_same_results(runs['linear'], runs['svc_linear'])


def test_a_refused_key_keeps_ssh_own_words_as_in_vanilla(ssh_env, sshd_alive, tmp_path):
    """A key the host does not take: UNREACHABLE in both, and the message
    keeps ssh's own "user@host: Permission denied (publickey)"."""
    key = tmp_path / 'stranger'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(key)], check=True)
    # No ControlPersist: vanilla would ride on a master an earlier test left.
    inventory = inventory_for(ssh_env, extra='ansible_ssh_args=-C').replace(ssh_env['key'], str(key))
    runs = _both(PB, tmp_path, inventory=inventory, env={'SSH_AUTH_SOCK': None})
    for strategy, run in runs.items():
        user = run.task('user', 'target')
        assert user['status'] == 'unreachable', (strategy, run.output)
        assert 'svc-login@127.0.0.1: Permission denied (publickey' in user['result']['msg'], (strategy, user)


@pytest.mark.parametrize('pin', ['4321', '0000', None])
def test_a_pkcs11_token_is_used_with_its_pin_as_in_vanilla(ssh_env, sshd_alive, tmp_path, pin):
    """With ``pkcs11_provider`` the password is the token's PIN, typed at
    its "Enter PIN for" prompt; no PIN fails at once, as in vanilla."""
    extra = f"ansible_ssh_executable={_pin_ssh(tmp_path)} ansible_ssh_pkcs11_provider=/fake/p11.so"
    if pin:
        extra += f" ansible_password={pin}"
    runs = _both(PB, tmp_path, inventory=inventory_for(ssh_env, extra=extra), env={'NEED_PROVIDER': '/fake/p11.so'})
    for strategy, run in runs.items():
        user = run.task('user', 'target')
        if pin == '4321':
            assert user['result']['stdout'] == 'svc-login', (strategy, run.output)
        elif pin is None:
            assert 'to use pkcs11_provider you must specify a password/pin' in user['result']['msg'], (strategy, user)
        else:
            assert user['status'] == 'unreachable', (strategy, run.output)
    assert_same_results(runs['linear'], runs['svc_linear'], drop={'msg'})


def test_password_mechanism_disable_never_types_the_password(ssh_env, sshd_alive, tmp_path):
    inventory = inventory_for(ssh_env, extra=f"ansible_ssh_executable={_pin_ssh(tmp_path)} ansible_password=4321 "
                                             "ansible_sshpass_prompt='Enter PIN for' "
                                             "ansible_ssh_password_mechanism=disable")
    runs = _both(PB, tmp_path, inventory=inventory)
    for strategy, run in runs.items():
        assert run.task('user', 'target')['status'] == 'unreachable', (strategy, run.output)
    assert_same_results(runs['linear'], runs['svc_linear'], drop={'msg'})


TTY_SCRIPT = """#!/bin/sh
echo "script out"
echo "script err" >&2
exit 0
"""

TTY_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: raw with stderr and rc
      raw: "id -un; echo err >&2; printf 'a\\nb'; exit 3"
      ignore_errors: true
    - name: raw as root
      raw: id -un
      become: true
    - name: raw without a tty
      raw: "echo out; echo err >&2"
      vars: {ansible_ssh_use_tty: false}
    - name: raw with ssh quiet
      raw: "echo out; tty >/dev/null && echo on a tty"
      vars: {ansible_ssh_extra_args: "-q"}
    - name: raw without a shared master
      raw: "echo out"
      vars: {ansible_ssh_args: "-C"}
    - name: script
      script: "{{ script_path }}"
    - name: command, a module, never on a tty
      command: sh -c 'echo out; echo err >&2; tty || true'
"""


def test_raw_and_script_run_on_a_terminal_as_in_vanilla(ssh_env, sshd_alive, tmp_path):
    """Byte for byte: CRLF, stderr joined to stdout, ssh's closing notice
    as the ssh arguments make it; ``use_tty: false`` on pipes."""
    script = tmp_path / 'tty.sh'
    script.write_text(TTY_SCRIPT)
    runs = _both(TTY_PB, tmp_path, inventory=inventory_for(ssh_env), extra_vars={'script_path': str(script)})
    svc = runs['svc_linear']
    first = svc.task('raw with stderr and rc', 'target')['result']
    assert (first['rc'], first['stdout']) == (3, 'svc-login\r\nerr\r\na\r\nb'), svc.output
    assert first['stderr'] == 'Shared connection to 127.0.0.1 closed.\r\n'
    assert svc.task('raw as root', 'target')['result']['stdout'] == 'root\r\n'
    assert svc.task('raw without a tty', 'target')['result']['stderr'] == 'err\n'
    assert svc.task('raw with ssh quiet', 'target')['result']['stderr'] == ''
    assert svc.task('raw without a shared master', 'target')['result']['stderr'] == 'Connection to 127.0.0.1 closed.\r\n'
    assert_same_results(runs['linear'], svc)


def test_an_existing_master_on_the_users_control_path_is_used_and_none_started(ssh_env, sshd_alive, tmp_path):
    """A ControlPath of the user's reaches a master opened before the run
    (as a user does with a second factor): the inventory names no key, so
    only the master can log in. ansible-svc never starts a master itself."""
    sock = tempfile.mktemp(prefix='svc-cm-', dir='/tmp')
    master = ['ssh', '-p', str(ssh_env['port']), '-i', ssh_env['key'], '-o', f"UserKnownHostsFile={ssh_env['known_hosts']}",
              '-o', 'BatchMode=yes', '-S', sock]
    subprocess.run(master + ['-M', '-f', '-N', f"svc-login@{ssh_env['host']}"], check=True, timeout=30)
    try:
        inventory = _inventory(ssh_env).replace("ansible_ssh_common_args='",
                                                f"ansible_ssh_common_args='-o ControlPath={sock} ")
        runs = _both(PB, tmp_path, inventory=inventory, env={'SSH_AUTH_SOCK': None})
        for strategy, run in runs.items():
            assert run.task('user', 'target')['result']['stdout'] == 'svc-login', (strategy, run.output)
        assert_same_results(runs['linear'], runs['svc_linear'])
    finally:
        subprocess.run(master + ['-O', 'exit', f"svc-login@{ssh_env['host']}"], timeout=30, capture_output=True)
    # Without the master, that login fails (no key): the master carried it.
    run = run_playbook(PB, tmp_path=tmp_path / 'no-master', inventory=inventory, env={'SSH_AUTH_SOCK': None})
    assert run.task('user', 'target')['status'] == 'unreachable', run.output
    assert not os.path.exists(sock)


@pytest.mark.parametrize('variable,value', [('ansible_ssh_verbosity', 3), ('ansible_scp_extra_args', '-l 8000'),
                                            ('ansible_sftp_extra_args', '-l 8000')])
def test_an_ssh_option_we_cannot_honour_fails_the_first_task_by_name(ssh_env, sshd_alive, tmp_path, variable, value):
    run = run_playbook(PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env, extra=f"{variable}='{value}'"))
    user = run.task('user', 'target')
    assert user['status'] == 'failed' and variable in user['result']['msg'], run.output
