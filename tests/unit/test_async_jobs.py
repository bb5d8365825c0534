"""Recognizing Ansible's async_wrapper command line; reading job files."""
from __future__ import annotations

import json

import pytest

from ansible_svc.controller import async_jobs, compat

TMP = '/home/u/.ansible/tmp/ansible-tmp-1.2-3-4'


def wrapped(inner, core):
    """`inner` as _low_level_execute_command hands it to the connection."""
    suffix = ' && sleep 0' if core == '2.19' else ''
    return "/bin/sh -c '%s%s'" % (inner, suffix)


def wrapper_args(core, jid, limit, module, args=None, preserve=False, interpreter='/usr/bin/python3'):
    """The async_wrapper arguments as each core's action plugin builds them
    (test_compat_contract.py checks this against the installed core)."""
    if core == '2.19':
        return '%s %s %s %s%s' % (jid, limit, module, args or '_', ' -preserve_tmp' if preserve else '')
    return '%s %s %s %s %s %s%s' % (jid, limit, 'true' if preserve else 'false', module, interpreter, module,
                                    ' ' + args if args else '')


@pytest.fixture(params=['2.19', '2.21'])
def core(request, monkeypatch):
    """Pretend the running core is 2.19 (same command line as 2.20) or 2.21,
    with its async_wrapper check passed."""
    monkeypatch.setattr(compat, 'core_version', lambda: request.param + '.0')
    monkeypatch.setattr(compat, '_verdict', lambda feature, version: None)
    return request.param


def test_parse_vanilla_command_line(core):
    cmd = wrapped("ANSIBLE_ASYNC_DIR='\"'\"'~/.ansible_async'\"'\"' /usr/bin/python3 %s/async_wrapper.py %s"
                  % (TMP, wrapper_args(core, 'j44579566501', 10, TMP + '/AnsiballZ_command.py')), core)
    command = async_jobs.parse_command(cmd)
    module = TMP + '/AnsiballZ_command.py'
    assert command == async_jobs.AsyncCommand(
        base_jid='j44579566501', limit=10, module_path=module, args_path=None, preserve_tmp=False,
        # 2.21 names the command running the module; before, the job derives it.
        argv=None if core == '2.19' else ['/usr/bin/python3', module],
    )
    assert command.tmpdir == TMP


def test_parse_args_file_preserve_tmp_and_interpreter_with_arguments(core):
    cmd = wrapped('/usr/bin/env python3 -E %s/async_wrapper.py %s'
                  % (TMP, wrapper_args(core, 'j1', 0, TMP + '/mod', TMP + '/args', preserve=True,
                                       interpreter='/usr/bin/env python3')), core)
    command = async_jobs.parse_command(cmd)
    assert command.args_path == TMP + '/args'
    assert command.preserve_tmp and command.tmpdir is None
    assert command.limit == 0


def test_tmpdir_outside_ansible_tmp_is_kept(core):
    command = async_jobs.parse_command(wrapped('python3 /srv/x/async_wrapper.py %s' % wrapper_args(core, 'j1', 5, '/srv/x/mod'), core))
    assert command.tmpdir is None


@pytest.mark.parametrize('cmd', [
    "/bin/sh -c 'echo async_wrapper && sleep 0'",
    "/bin/sh -c 'echo async_wrapper'",
    "/bin/sh -c 'python3 /t/async_wrapper.py notajid 10 /t/mod _ && sleep 0'",
    "/bin/sh -c 'python3 /t/async_wrapper.py j1 ten /t/mod _ && sleep 0'",
    "/bin/sh -c 'python3 /t/async_wrapper.py j1 10 /t/mod _ -other && sleep 0'",
    "/bin/sh -c 'python3 /t/async_wrapper.py j1 10 && sleep 0'",
    "/bin/sh -c 'python3 /t/async_wrapper.py j1 10 maybe /t/mod python3 /t/mod'",
    "/bin/sh -c 'python3 /t/async_wrapper.py j1 10 false /t/mod python3 /t/other'",
    "/bin/sh -c 'python3 /t/async_wrapper.py j1 10 false /t/mod python3 /t/mod /t/args extra'",
    "/bin/sh -c 'unbalanced \"quote'",
    'ls -l',
])
def test_other_commands_are_not_async(cmd, core):
    assert async_jobs.parse_command(cmd) is None


def test_a_failed_async_wrapper_check_runs_the_job_vanilla(monkeypatch):
    """When the installed async_wrapper does not match the adapter, the
    command line is not taken over, whatever it looks like."""
    monkeypatch.setattr(compat, '_verdict', lambda feature, version: 'faked mismatch' if feature == 'async_wrapper' else None)
    monkeypatch.setattr(compat, '_WARNED', set())
    core = '2.21' if compat.series(compat.core_version()) >= (2, 21) else '2.19'
    cmd = wrapped('python3 /t/async_wrapper.py %s' % wrapper_args(core, 'j1', 5, '/t/mod'), core)
    assert async_jobs.parse_command(cmd) is None


def test_job_data_as_async_status_reads_it():
    assert async_jobs.job_data('j1.2', json.dumps({'started': True, 'finished': False, 'ansible_job_id': 'j1.2'}))['finished'] is False
    done = async_jobs.job_data('j1.2', json.dumps({'rc': 0, 'changed': True}))
    assert done['finished'] is True and done['ansible_job_id'] == 'j1.2'
    assert async_jobs.job_data('j1.2', '') == {'ansible_job_id': 'j1.2', 'started': True, 'finished': False}
    missing = async_jobs.job_data('j1.2', None)
    assert missing['failed'] and missing['msg'] == 'could not find job'
    junk = async_jobs.job_data('j1.2', 'not json')
    assert junk['failed'] and junk['finished'] and 'Could not parse job output' in junk['msg']


def _payload(interpreter='/usr/bin/python3'):
    from ansible_svc.controller.ansiballz import ModulePayload
    return ModulePayload(interpreter=interpreter, module_name='command', module_fqn='ansible.modules.command',
                         params=b'{}', profile='legacy', extensions={}, rlimit_nofile=0, zip_data=b'', key='k')


@pytest.mark.parametrize('argv, args_path, interpreter, warm', [
    (None, None, '/usr/bin/python3', True),                                       # 2.19, 2.20
    (['/usr/bin/python3', TMP + '/AnsiballZ_command.py'], None, '/usr/bin/python3', True),  # 2.21
    (['/usr/bin/python3.12', TMP + '/AnsiballZ_command.py'], None, '/usr/bin/python3', False),
    (None, TMP + '/args', '/usr/bin/python3', False),                             # an args file: old style
    (None, None, '/usr/bin/env python3', False),                                  # interpreter with arguments
])
def test_which_async_jobs_start_warm(argv, args_path, interpreter, warm):
    from types import SimpleNamespace

    from ansible_svc.controller.plugin_connection import SvcConnectionBase
    module = TMP + '/AnsiballZ_command.py'
    payload = _payload(interpreter)
    conn = SimpleNamespace(_uploaded_modules={module: payload, TMP + '/async_wrapper.py': _payload()})
    command = async_jobs.AsyncCommand(base_jid='j1', limit=10, module_path=module, args_path=args_path,
                                      preserve_tmp=False, argv=argv)
    assert SvcConnectionBase._warm_payload(conn, command) is (payload if warm else None)
    assert conn._uploaded_modules == {}
    # A module this task did not upload (a file already there) runs cold.
    assert SvcConnectionBase._warm_payload(conn, command) is None
