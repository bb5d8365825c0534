"""Become through a plugin's own command line (spec.through_plugin, the mux's
become.start, the target's become.Connection), with a local login
interpreter and a fake become program: no root, no sshd.

The fake program prompts on the terminal, reads the password from it, and
runs its command line as the same user (with FAKEBECOME=1 in its
environment), as sudo or doas would as another.
"""
from __future__ import annotations

import os
import shlex
import sys

import mitogen.core
import mitogen.master
import pytest
from ansible.plugins.become import BecomeBase
from ansible.plugins.shell.sh import ShellModule

from ansible_svc.controller import spec
from ansible_svc.mux import become as mux_become
from ansible_svc.target import become as target_become

FAKE_BECOME = """#!/bin/sh
# fakebecome <password> <command>: prompt, check, run
printf 'Fake password for %s: ' "$(id -un)"
read -r given
if [ "$given" != "$1" ]; then echo "fakebecome: sorry, wrong password"; exit 1; fi
FAKEBECOME=1 exec /bin/sh -c "$2"
"""


class FakeBecome(BecomeBase):
    name = 'fakebecome'
    fail = ('fakebecome: sorry, wrong password',)

    def __init__(self, exe, expected, password, prompt=True):
        super().__init__()
        self._settings = {'become_exe': exe, 'become_user': 'root', 'become_pass': password, 'become_flags': ''}
        self._expected = expected
        self._prompt = prompt

    def get_option(self, option, hostvars=None, playcontext=None):
        return self._settings[option]

    def build_become_command(self, cmd, shell):
        super().build_become_command(cmd, shell)
        if self._prompt:
            self.prompt = 'Fake password for'
            return '%s %s %s' % (self._settings['become_exe'], shlex.quote(self._expected), self._build_success_command(cmd, shell))
        return '/bin/sh -c %s' % self._build_success_command(cmd, shell)


@pytest.fixture(scope='module')
def login():
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker)
    try:
        yield router, router.local(python_path=[sys.executable], connect_timeout=30)
    finally:
        broker.shutdown()
        broker.join()


@pytest.fixture
def exe(tmp_path):
    path = tmp_path / 'fakebecome'
    path.write_text(FAKE_BECOME)
    path.chmod(0o755)
    return str(path)


def become_settings(plugin):
    settings = spec.become_spec(plugin, ShellModule())
    assert 'command' in settings  # not a native method: through the plugin
    return settings


def test_stage0_is_quoting_proof():
    for char in "'$`\n":
        assert char not in target_become.STAGE0
    assert target_become.PYTHON_TOKEN in target_become.stage0()


def test_settings_are_the_same_for_every_task(exe):
    plugin = FakeBecome(exe, 'pw', 'pw')
    first, second = become_settings(plugin), become_settings(plugin)
    assert first == second
    assert target_become.ID_TOKEN in first['command'] and target_become.ID_TOKEN in first['success']
    assert first['incorrect'] == ['fakebecome: sorry, wrong password']


def test_the_plugin_command_starts_an_interpreter_after_its_prompt(login, exe):
    router, local = login
    become = become_settings(FakeBecome(exe, 'right', 'right'))
    context = mux_become.start(router, local, become, sys.executable, timeout=30)
    assert context.call(os.getenv, 'FAKEBECOME') == '1'  # started by the fake program
    context.shutdown(wait=True)


def test_without_a_prompt(login, exe):
    router, local = login
    become = become_settings(FakeBecome(exe, '', None, prompt=False))
    context = mux_become.start(router, local, become, sys.executable, timeout=30)
    assert context.call(os.getpid) != local.call(os.getpid)
    context.shutdown(wait=True)


@pytest.mark.parametrize('password, words', [
    ('wrong', 'Incorrect fakebecome password'),
    (None, 'Missing fakebecome password'),
])
def test_a_wrong_or_missing_password_fails_with_vanillas_words(login, exe, password, words):
    router, local = login
    become = become_settings(FakeBecome(exe, 'right', password))
    with pytest.raises(mitogen.core.StreamError, match=words):
        mux_become.start(router, local, become, sys.executable, timeout=30)


def test_a_python_path_that_needs_quoting_is_refused(exe):
    become = become_settings(FakeBecome(exe, 'pw', 'pw'))
    with pytest.raises(ValueError, match='ansible_python_interpreter'):
        mux_become.filled(become, '/usr/bin/env python3', mux_become.fresh_id())


def test_native_methods():
    assert spec.native({'method': 'sudo', 'flags': '-H -S -n'})
    assert not spec.native({'method': 'sudo', 'flags': '-g adm'})
    assert spec.native({'method': 'doas', 'flags': ''})
    assert not spec.native({'method': 'doas', 'flags': '-s'})
    assert not spec.native({'method': 'fakebecome', 'flags': ''})
