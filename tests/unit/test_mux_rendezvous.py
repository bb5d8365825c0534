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


# -- a strategy's mux starts without waiting ---------------------------------

def test_a_mux_started_without_waiting_is_found_by_the_first_attach(tmp_path, monkeypatch):
    """ensure_started returns before the mux listens; a worker's attach waits
    for the socket (renamed into place once listening) and reaches it."""
    from ansible_svc.controller import mux_client

    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    monkeypatch.delenv(mux_client.SOCKET_ENV, raising=False)
    monkeypatch.delenv(mux_client.PID_ENV, raising=False)
    mux = mux_process.ensure_started(pool_size=4, verbosity=0)
    try:
        pid, _, start = os.environ[mux_client.PID_ENV].partition(' ')
        assert int(pid) == mux.proc.pid and start == mux_process.processes.start_time(mux.proc.pid)
        assert not os.path.exists(mux.socket_path)  # still starting: the start did not wait
        attachment = mux_client.attach()
        assert attachment.path == mux.socket_path and os.path.exists(mux.socket_path)
        assert not os.path.exists(mux.socket_path + '.new')
    finally:
        mux_client.detach()
        mux_process._stop_at_exit(mux)
    assert mux.proc.returncode == 0 and not os.path.exists(mux.directory)
    assert mux_client.SOCKET_ENV not in os.environ and mux_client.PID_ENV not in os.environ


def test_a_run_that_ends_before_its_mux_is_ready_stops_it_cleanly(tmp_path, monkeypatch):
    """The strategy does not wait for READY: a run that fails at once closes
    the mux's stdout before the mux writes to it. The mux must still end by
    itself (exit 0), not be killed after the stop timeout."""
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    monkeypatch.setattr(mux_process, 'STOP_TIMEOUT', 10)
    mux = mux_process.MuxProcess.start(pool_size=4, verbosity=0, wait=False)
    mux.stop()  # at once: the mux is still importing, READY not written yet
    assert mux.proc.returncode == 0 and not os.path.exists(mux.directory)


def test_waiting_for_a_mux_that_died_fails_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    start = mux_process.processes.start_time(dead.pid)
    dead.wait()
    began = time.monotonic()
    with pytest.raises(mux_process.MuxStartError, match='exited during start-up'):
        mux_process.wait_listening(str(tmp_path / 'mux.sock'), dead.pid, start)
    assert time.monotonic() - began < 5  # not the 30 s start timeout


def test_waiting_for_a_live_mux_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(mux_process, 'START_TIMEOUT', 0.3)
    with pytest.raises(mux_process.MuxStartError, match='did not start within'):
        mux_process.wait_listening(str(tmp_path / 'mux.sock'), os.getpid(), mux_process.processes.start_time(os.getpid()))


WORKER_DETACH = """
import multiprocessing, os, sys, threading
from ansible_svc.controller import mux_client, mux_process

def worker(queue):
    mux_client.attach()
    mux_client.detach(at_exit=mux_client.in_worker())
    brokers = [t.name for t in threading.enumerate() if t.name == 'mitogen.broker']
    queue.put({'in_worker': mux_client.in_worker(), 'current': mux_client.current() is not None, 'brokers': brokers})

mux = mux_process.ensure_started(pool_size=4, verbosity=0)
ctx = multiprocessing.get_context('fork')
queue = ctx.Queue()
p = ctx.Process(target=worker, args=(queue,))
p.start()
answer = queue.get(timeout=30)
p.join(30)
answer.update(exitcode=p.exitcode, controller_in_worker=mux_client.in_worker())
print(answer)
"""


def test_a_worker_leaves_its_broker_to_stop_as_it_exits(tmp_path):
    """In a worker, close() does not wait for the goodbye to the mux; the
    broker thread still runs then, and the worker's exit ends it."""
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    env.pop('ANSIBLE_SVC_MUX_SOCKET', None)
    out = subprocess.run([sys.executable, '-c', WORKER_DETACH], env=env, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    answer = eval(out.stdout.strip().splitlines()[-1])
    assert answer == {'in_worker': True, 'current': False, 'brokers': ['mitogen.broker'], 'exitcode': 0,
                      'controller_in_worker': False}
