"""The module runner's parts inside a stand-in target interpreter (a local
mitogen child; no sshd, no root): the payload store and its import hook
(payloads), task processes and the spare (taskproc), and the wrapper's exit
statuses (wrapper)."""
from __future__ import annotations

import io
import os
import sys
import time
import zipfile

import mitogen.core
import pytest

import target_parts
from ansible_svc.target import taskproc, wrapper
from bench.isolation_cost import build_payload


def synthetic_zip(extra_value: int) -> bytes:
    files = {
        'ansible/__init__.py': '',
        'ansible/module_utils/__init__.py': '',
        'ansible/module_utils/_internal/__init__.py': '',
        'ansible/module_utils/_internal/_ansiballz/__init__.py': '',
        'ansible/module_utils/_internal/_ansiballz/_loader.py': 'LOADED = True\n',
        'ansible/module_utils/extra.py': 'import os\nVALUE = %d\n' % extra_value,
        'ansible/modules/__init__.py': '',
        'ansible/modules/thing.py': 'raise RuntimeError("module code never runs in the interpreter")\n',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def spec_of(payload):
    return {'params': payload.params, 'profile': payload.profile, 'module_fqn': payload.module_fqn,
            'extensions': payload.extensions, 'rlimit_nofile': 0, 'env': {}, 'cwd': None}


@pytest.fixture(scope='module')
def ping():
    payload = build_payload('ansible.builtin.ping', {'data': 'pong'})
    return mitogen.core.Blob(payload.zip_data), payload.key, spec_of(payload)


def command(raw):
    payload = build_payload('ansible.builtin.command', {'_raw_params': raw})
    return mitogen.core.Blob(payload.zip_data), payload.key, spec_of(payload)


def test_store_serves_the_zip_and_preloads_core_module_utils_only(target):
    found = target.call(target_parts.store_and_preload, mitogen.core.Blob(synthetic_zip(1)),
                        mitogen.core.Blob(synthetic_zip(2)))
    assert found['cold'] is False and found['warm'] is True
    assert found['path_exists'] and found['dir_has_pid']
    assert found['extra_value'] == 1
    assert found['extra_file'].startswith(found['payload_path'])
    assert found['module_imported'] is False  # modules themselves are never preloaded
    assert 'ansible.module_utils.extra' in found['preloaded']
    assert 'ansible.modules.thing' not in found['preloaded']
    # The second payload ships another extra.py: its tasks must not see the
    # preloaded one, and warming it must not replace it for the first.
    assert found['stale_in_second'] == ['ansible.module_utils.extra']
    assert found['stale_in_first'] == []
    assert found['extra_after_second'] == 1
    assert found['kept_by_child'] is True and found['removed_by_owner'] is True


def test_module_code_runs_only_in_the_task_process(target, ping):
    result = target.call(target_parts.warm_run, *ping)
    assert result['rc'] == 0, result
    assert result['out']['ping'] == 'pong'
    assert result['preloaded'] is True
    assert result['module_in_interpreter'] == []


def test_the_spare_runs_the_next_task_and_a_new_payload_retires_it(target, ping):
    result = target.call(target_parts.spare_runs_next, *command("sh -c 'echo $PPID'"), *ping)
    assert result['ran']['rc'] == 0, result
    assert result['ran']['out']['stdout'] == str(result['spare'])  # the command's parent was the spare
    assert result['pong']['rc'] == 0 and result['pong']['out']['ping'] == 'pong'
    assert result['retired_reaped'] is True  # no zombie left behind
    assert result['spare_now'] is None and result['running'] == {}


def test_a_killed_task_process_reports_as_vanilla_shell_would(target):
    result = target.call(target_parts.killed_run, *command('sleep 30'))
    assert result['job'] == 'job-1'
    assert result['rc'] == 128 + 9
    assert result['err'].endswith('Killed\n')
    assert result['running_after'] == {}


def test_killed_status_words():
    assert taskproc.killed(9, b'o', b'') == (137, b'o', b'Killed\n')
    assert taskproc.killed(2, b'', b'') == (130, b'', b'')  # SIGINT: no words, as sh


@pytest.mark.parametrize('code, rc, words', [(None, 0, ''), (3, 3, ''), (258, 2, ''), ('bye', 1, 'bye\n')])
def test_exit_codes_as_the_interpreter_gives_them(code, rc, words, capsys):
    assert wrapper.exit_code(SystemExit(code)) == rc
    assert capsys.readouterr().err == words


def _group_child(script):
    """A child in a session (and process group) of its own, as task
    processes are; ``(pid, stdout fd, stderr fd)`` for ``collect``."""
    import subprocess
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    proc.returncode = 0  # collect reaps it; keep Popen's finalizer from trying
    return proc.pid, os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno()), proc


def test_collect_within_a_deadline_returns_the_run():
    pid, out, err, proc = _group_child('import sys; print("out"); sys.stderr.write("err"); sys.exit(3)')
    proc.stdout.close(), proc.stderr.close()
    assert taskproc.collect(pid, out, err, deadline=time.time() + 30) == (3, b'out\n', b'err')


def test_collect_past_its_deadline_kills_the_whole_group(tmp_path):
    pidfile = tmp_path / 'grandchild'
    script = ('import subprocess, sys; p = subprocess.Popen(["sleep", "60"]); '
              'open(sys.argv[1] if len(sys.argv) > 1 else %r, "w").write(str(p.pid)); '
              'print("started", flush=True); p.wait()' % str(pidfile))
    pid, out, err, proc = _group_child(script)
    proc.stdout.close(), proc.stderr.close()
    assert taskproc.collect(pid, out, err, deadline=time.time() + 1.5) is None
    grandchild = int(pidfile.read_text())
    # The sleep was in the child's group: killed too (a zombie at most until
    # init reaps it).
    deadline = time.monotonic() + 10
    while True:
        try:
            state = open('/proc/%d/stat' % grandchild).read().rsplit(')', 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state in 'ZX':
            break
        assert time.monotonic() < deadline, 'the grandchild outlived the deadline kill'
        time.sleep(0.05)
