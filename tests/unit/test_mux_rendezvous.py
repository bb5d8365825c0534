"""Connection-only mode: the first worker starts the run's mux, the others
find it (mux_process.socket_for_run). Real muxes; the "controller" is this
test process, or a fresh one whose forks are the "workers", as Ansible's
workers are forks of ansible-playbook.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ansible_svc.controller import mux_process

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tmpdir_for_mux(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    yield tmp_path
    # The muxes watch this test process, which outlives the test: end them.
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/cmdline', 'rb') as fp:
                    cmdline = fp.read()
            except OSError:
                continue
            if b'ansible_svc.mux' in cmdline and str(tmp_path).encode() in cmdline:
                os.kill(int(entry), signal.SIGTERM)
    deadline = time.monotonic() + 15
    while list(tmp_path.glob('ansible-svc-*/run-*')) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(tmp_path.glob('ansible-svc-*/run-*')), 'the mux did not remove its run directory'


CONTROLLER = """
import json, multiprocessing, os, sys
from ansible_svc.controller import mux_process

def worker(queue):
    try:
        queue.put(list(mux_process.socket_for_run(4, 0)))
    except Exception as exc:
        queue.put(repr(exc))

ctx = multiprocessing.get_context('fork')
queue = ctx.Queue()
workers = [ctx.Process(target=worker, args=(queue,)) for _ in range(8)]
for w in workers:
    w.start()
print(json.dumps({'pid': os.getpid(), 'answers': [queue.get(timeout=60) for _ in workers]}))
for w in workers:
    w.join(30)
"""


def test_many_workers_at_once_start_one_mux_that_ends_with_the_controller(tmp_path):
    """A fresh controller process (single-threaded, as ansible-playbook is
    when it forks) forks eight workers at once: one mux starts, all find it;
    when the controller exits, the mux ends and removes the run's directory."""
    env = dict(os.environ, TMPDIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    done = subprocess.run([sys.executable, '-c', CONTROLLER], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    answers = report['answers']
    assert all(isinstance(a, list) for a in answers), answers
    assert len({path for path, _ in answers}) == 1, answers
    assert [started for _, started in answers].count(True) == 1, answers
    run_dir = Path(answers[0][0]).parent
    assert run_dir.name.startswith('run-%d-' % report['pid'])
    assert run_dir.parent == tmp_path / f'ansible-svc-{os.getuid()}'
    deadline = time.monotonic() + 10
    while run_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not run_dir.exists(), 'the mux did not end with its controller'
    assert not [p for p in os.listdir('/proc') if p.isdigit() and answers[0][0].encode() in _cmdline(p)]


def test_a_dead_mux_is_replaced(tmpdir_for_mux):
    path, started = mux_process.socket_for_run(4, 0)
    assert started
    pid = [int(e) for e in os.listdir('/proc') if e.isdigit() and _cmdline(e).count(path.encode())][0]
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)  # our child: reaped here
    assert mux_process.socket_for_run(4, 0) == (path, True)


def test_a_shared_directory_is_refused(tmpdir_for_mux):
    base = tmpdir_for_mux / f'ansible-svc-{os.getuid()}'
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    with pytest.raises(mux_process.MuxStartError, match='not a private directory'):
        mux_process.socket_for_run(4, 0)


def test_runs_of_dead_controllers_are_swept(tmpdir_for_mux):
    base = tmpdir_for_mux / f'ansible-svc-{os.getuid()}'
    base.mkdir(mode=0o700)
    dead = base / 'run-999999999-1'
    dead.mkdir()
    mux_process.socket_for_run(4, 0)
    assert not dead.exists()


def _cmdline(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as fp:
            return fp.read()
    except OSError:
        return b''


def test_a_socket_path_too_long_is_a_clear_error(tmp_path, monkeypatch):
    deep = tmp_path / ('d' * 100)
    deep.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(deep))
    with pytest.raises(mux_process.MuxStartError, match='set TMPDIR to a shorter directory'):
        mux_process.socket_for_run(4, 0)
    with pytest.raises(mux_process.MuxStartError, match='set TMPDIR to a shorter directory'):
        mux_process.MuxProcess.start(4, 0)
    assert not list(deep.glob('ansible-svc-*/*')), 'a directory was left behind'


def test_a_mux_that_cannot_listen_exits_at_once(tmp_path):
    """Not a hang: the starter sees the exit and says so."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    done = subprocess.run([sys.executable, '-P', '-m', 'ansible_svc.mux', '--socket', str(tmp_path / 'no' / 'dir' / 's'),
                           '--watch', '%d:' % os.getpid()], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and 'cannot listen on' in done.stderr, done.stderr
