"""Recognizing Ansible's async_wrapper command line; reading job files."""
from __future__ import annotations

import json

import pytest

from ansible_svc.controller import async_jobs

TMP = '/home/u/.ansible/tmp/ansible-tmp-1.2-3-4'


def wrapped(inner):
    return "/bin/sh -c '%s && sleep 0'" % inner


def test_parse_vanilla_command_line():
    cmd = wrapped("ANSIBLE_ASYNC_DIR='\"'\"'~/.ansible_async'\"'\"' /usr/bin/python3 %s/async_wrapper.py j44579566501 10 %s/AnsiballZ_command.py _" % (TMP, TMP))
    command = async_jobs.parse_command(cmd)
    assert command == async_jobs.AsyncCommand(
        base_jid='j44579566501', limit=10, module_path=TMP + '/AnsiballZ_command.py', args_path=None, preserve_tmp=False,
    )
    assert command.tmpdir == TMP


def test_parse_args_file_preserve_tmp_and_interpreter_with_arguments():
    cmd = wrapped('/usr/bin/env python3 -E %s/async_wrapper.py j1 0 %s/mod %s/args -preserve_tmp' % (TMP, TMP, TMP))
    command = async_jobs.parse_command(cmd)
    assert command.args_path == TMP + '/args'
    assert command.preserve_tmp and command.tmpdir is None
    assert command.limit == 0


def test_tmpdir_outside_ansible_tmp_is_kept():
    command = async_jobs.parse_command(wrapped('python3 /srv/x/async_wrapper.py j1 5 /srv/x/mod _'))
    assert command.tmpdir is None


@pytest.mark.parametrize('cmd', [
    "/bin/sh -c 'echo async_wrapper && sleep 0'",
    wrapped('python3 /t/async_wrapper.py notajid 10 /t/mod _'),
    wrapped('python3 /t/async_wrapper.py j1 ten /t/mod _'),
    wrapped('python3 /t/async_wrapper.py j1 10 /t/mod _ -other'),
    wrapped('python3 /t/async_wrapper.py j1 10'),
    "/bin/sh -c 'unbalanced \"quote'",
    'ls -l',
])
def test_other_commands_are_not_async(cmd):
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
