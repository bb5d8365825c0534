"""The target's fork server, run for real as the target runs it: a fresh
``python -S -c <source>`` process fed JSON lines, forking job supervisors."""
from __future__ import annotations

import inspect
import json
import os
import select
import sys
import time

import pytest

from ansible_svc.target import forkserver


class Server:
    def __init__(self):
        self.proc = forkserver.spawn(sys.executable, inspect.getsource(forkserver))

    def start(self, **request):
        request.setdefault('op', 'start')
        self.proc.stdin.write((json.dumps(request) + '\n').encode())
        self.proc.stdin.flush()

    def event(self, timeout=10):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, 'no event from the fork server within %ss' % timeout
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture
def server():
    srv = Server()
    yield srv
    if srv.proc.poll() is None:
        srv.close()


def module(tmp_path, name, body, shebang='#!/bin/sh'):
    path = tmp_path / name
    path.write_text('%s\n%s\n' % (shebang, body))
    path.chmod(0o755)
    return str(path)


def request(tmp_path, module_path, base='j1', **extra):
    return dict(base=base, module_path=module_path, args_path=None, env={}, cwd=None,
                async_dir=str(tmp_path / 'async'), limit=30, tmpdir=None, **extra)


def running(pid):
    """Alive and not a zombie waiting for init to reap it."""
    try:
        with open('/proc/%d/stat' % pid) as fp:
            return fp.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def job_file(event):
    with open(event['results_file']) as fp:
        return json.load(fp)


def test_job_runs_detached_and_writes_vanilla_job_file(server, tmp_path):
    mod = module(tmp_path, 'mod', 'echo "{\\"changed\\": true, \\"sid\\": $(ps -o sid= $$), \\"pid\\": $$}"; echo oops >&2')
    server.start(**request(tmp_path, mod))
    started = server.event()
    assert started['event'] == 'started' and started['base'] == 'j1'
    assert started['jid'].startswith('j1.')
    done = server.event()
    assert done == {'event': 'done', 'jid': started['jid']}
    result = job_file(started)
    assert result['changed'] is True and result['stderr'] == 'oops\n'
    # The module ran in a session of its own, not the fork server's.
    assert result['sid'] == result['pid'] != os.getsid(server.proc.pid)


def test_args_file_env_and_tmpdir_removal(server, tmp_path):
    tmpdir = tmp_path / 'ansible-tmp-1'
    tmpdir.mkdir()
    args = tmpdir / 'args'
    args.write_text('hello')
    mod = module(tmpdir, 'mod', 'echo "{\\"args\\": \\"$(cat $1)\\", \\"env\\": \\"$SVC_TEST\\"}"')
    server.start(**dict(request(tmp_path, mod), args_path=str(args), env={'SVC_TEST': 'x'}, tmpdir=str(tmpdir)))
    started = server.event()
    server.event()
    assert job_file(started) == {'args': 'hello', 'env': 'x'}
    assert not tmpdir.exists()


def test_junk_and_missing_json(server, tmp_path):
    server.start(**request(tmp_path, module(tmp_path, 'junk', 'echo hi; echo "{\\"a\\": 1}"; echo trailing'), base='j1'))
    first = server.event()
    server.event()
    result = job_file(first)
    assert result['a'] == 1 and 'junk after the JSON data: trailing' in result['warnings'][0]
    server.start(**request(tmp_path, module(tmp_path, 'nojson', 'echo not json; exit 3'), base='j2'))
    second = server.event()
    server.event()
    result = job_file(second)
    assert result['failed'] and result['data'] == 'not json\n' and 'rc' not in result  # as vanilla


def test_missing_interpreter_fails_the_job(server, tmp_path):
    server.start(**request(tmp_path, module(tmp_path, 'mod', 'true', shebang='#!/nonexistent/python')))
    started = server.event()
    server.event()
    result = job_file(started)
    assert result['failed'] and 'nonexistent' in result['msg']


def test_timeout_kills_the_whole_process_group(server, tmp_path):
    pidfile = tmp_path / 'child.pid'
    mod = module(tmp_path, 'mod', 'sleep 60 & echo $! > %s; wait' % pidfile)
    server.start(**dict(request(tmp_path, mod), limit=1))
    started = server.event()
    assert server.event(timeout=10)['event'] == 'done'
    result = job_file(started)
    assert result == {'msg': 'Timeout exceeded', 'failed': True, 'child_pid': result['child_pid']}
    assert not running(int(pidfile.read_text()))


def test_unwritable_async_dir_fails_the_start(server, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    server.start(**dict(request(tmp_path, module(tmp_path, 'mod', 'true')), async_dir=str(blocker / 'sub')))
    event = server.event()
    assert event['event'] == 'failed' and 'could not create directory' in event['msg']


def test_jobs_outlive_the_server(server, tmp_path):
    mod = module(tmp_path, 'mod', 'sleep 1; echo "{\\"survived\\": true}"')
    server.start(**request(tmp_path, mod))
    started = server.event()
    server.close()  # the interpreter went away
    deadline = time.time() + 10
    while time.time() < deadline and 'survived' not in job_file(started):
        time.sleep(0.1)
    assert job_file(started) == {'survived': True}


JSON_OUTPUTS = [
    '{"a": 1}\n',
    'motd line\n{"a": 1}\n',
    '{"a": 1}\ntrailing junk\n',
    'lead\n{"a":\n 1}\ntrail 1\ntrail 2\n',
    '{"a": 1, "warnings": "one"}\njunk\n',
    'this is not json\n',
    '',
    '{ this starts like json\n',
    '{ not: json }\n',
    '}\n{"a": 1\n',
]


@pytest.mark.parametrize('stdout', JSON_OUTPUTS)
def test_json_result_is_async_wrappers(stdout):
    """Contract with the installed ansible-core: a job's output is parsed,
    and refused, in async_wrapper's own words."""
    from ansible.modules import async_wrapper

    def vanilla(text):
        data, warnings = async_wrapper._filter_non_json_lines(text)
        result = json.loads(data)
        if warnings:
            existing = result.get('warnings', [])
            result['warnings'] = (existing if isinstance(existing, list) else [existing]) + warnings
        return result

    outcomes = []
    for parse in (vanilla, forkserver.json_result):
        try:
            outcomes.append(('ok', parse(stdout)))
        except Exception as exc:
            outcomes.append((type(exc).__name__, str(exc)))
    assert outcomes[0] == outcomes[1]
