"""Start and stop the run's mux process.

Runs in the ``ansible-playbook`` controller process (``svc_*`` strategies)
or, without a strategy of ours (connection-only mode), in the first worker
that needs the mux. Global state: the one :class:`MuxProcess` a strategy
started, and the ``ANSIBLE_SVC_MUX_SOCKET`` environment variable that forked
workers inherit.

The mux is a fresh ``python -m ansible_svc.mux`` process, not a fork of the
controller: it inherits none of Ansible's state, threads or open files.

Connection-only mode (:func:`socket_for_run`): the run is the controller
process (workers are its forks), named by its pid and start time. Its mux
lives in ``$TMPDIR/ansible-svc-<uid>/run-<pid>-<start>/``; the first worker
takes that directory's lock, starts the mux there, and the others find it.
The mux watches the controller's pid and ends with it, however it ends.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import multiprocessing
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import ansible_svc
from ansible_svc import processes
from ansible_svc.controller import mux_client

LOG = logging.getLogger(__name__)

#: How long the mux may take to start listening (it imports mitogen only).
START_TIMEOUT = 30.0

#: How long the controller waits at exit for the mux's orderly shutdown.
STOP_TIMEOUT = 15.0

#: The longest unix socket path Linux takes (sun_path is 108 bytes, NUL
#: included); other systems allow 104.
MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103


class MuxStartError(Exception):
    pass


class MuxProcess(object):
    """A running mux, its private directory and the lifeline that ends it."""

    def __init__(self, proc, directory, socket_path, lifeline_w):
        self.proc = proc
        self.directory = directory
        self.socket_path = socket_path
        self._lifeline_w = lifeline_w
        self._owner_pid = os.getpid()

    @classmethod
    def start(cls, pool_size: int, verbosity: int, directory: str | None = None,
              watch: tuple[int, str] | None = None, wait: bool = True) -> "MuxProcess":
        """Start a mux that ends when this process closes its lifeline, or
        (`watch`) when process ``(pid, start time)`` exits. It lives in
        `directory` (created, mode 0700, when not given).

        With `wait` false, return once the process runs: whoever attaches
        first waits for it to listen (:func:`wait_listening`)."""
        created = directory is None
        if created:
            directory = tempfile.mkdtemp(prefix="ansible-svc-")  # mode 0700
        socket_path = os.path.join(directory, "mux.sock")
        try:
            _check_socket_path(socket_path)
        except MuxStartError:
            if created:
                os.rmdir(directory)
            raise
        if watch is None:
            lifeline_r, lifeline_w = os.pipe()
            os.set_inheritable(lifeline_r, True)
            end = ["--lifeline-fd", str(lifeline_r)]
            pass_fds = (lifeline_r,)
        else:
            lifeline_r = lifeline_w = None
            end = ["--watch", "%d:%s" % watch]
            pass_fds = ()
        argv = [
            # -P: the cwd (often the playbook's directory) is not put on
            # the mux's import path, so nothing there can be imported or
            # served to a target.
            sys.executable, "-P", "-m", "ansible_svc.mux",
            "--socket", socket_path,
            *end,
            "--pool-size", str(pool_size),
            "--verbosity", str(verbosity),
        ]
        env = dict(os.environ)
        if ansible_svc.BUNDLED_ROOT:  # the copy an installed collection carries
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [ansible_svc.BUNDLED_ROOT, env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                # Explicitly: ansible-playbook marks fd 2 close-on-exec, and
                # the mux's log lines would silently vanish.
                stderr=2,
                pass_fds=pass_fds,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            if lifeline_r is not None:
                os.close(lifeline_r)
        mux = cls(proc, directory, socket_path, lifeline_w)
        if wait:
            try:
                mux._wait_ready()
            except BaseException:
                mux.stop()
                raise
        return mux

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise MuxStartError("the ansible-svc mux did not start within %ds" % START_TIMEOUT)
            ready = select.select([fd], [], [], left)[0]
            if ready:
                chunk = os.read(fd, 256)
                if not chunk:
                    rc = self.proc.wait(5)
                    raise MuxStartError("the ansible-svc mux exited during start-up (status %s); see its messages above" % rc)
                line += chunk
        if not line.startswith(b"READY"):
            raise MuxStartError("unexpected start-up output from the ansible-svc mux: %r" % line)
        self.proc.stdout.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Close the lifeline, wait (bounded) for the mux, remove its dir."""
        if not self.proc.stdout.closed:
            self.proc.stdout.close()
        if self._lifeline_w is not None:
            os.close(self._lifeline_w)
            self._lifeline_w = None
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            LOG.warning("ansible-svc mux %d did not stop in %ds; killing it", self.proc.pid, STOP_TIMEOUT)
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


_mux: MuxProcess | None = None


def _close_lifeline_in_child() -> None:
    """Forked children (Ansible's workers) must not hold the lifeline.

    Workers call setsid() and may outlive a killed controller; if they held
    the write end, the mux would not see the controller die until they
    exited.
    """
    if _mux is not None and _mux._lifeline_w is not None:
        try:
            os.close(_mux._lifeline_w)
        except OSError:
            pass
        _mux._lifeline_w = None


os.register_at_fork(after_in_child=_close_lifeline_in_child)


def ensure_started(pool_size: int, verbosity: int) -> MuxProcess:
    """Start the run's mux once; later plays of the same run reuse it.

    Returns at once: the mux gets ready while Ansible forks the first
    workers and templates their tasks (~0.15 s off every run), and the first
    worker to attach waits for it (:func:`wait_listening`)."""
    global _mux
    if _mux is not None and _mux.alive():
        return _mux
    if _mux is not None:
        LOG.warning("the ansible-svc mux exited unexpectedly (status %s); starting a new one", _mux.proc.returncode)
        _mux.stop()
    _mux = MuxProcess.start(pool_size, verbosity, wait=False)
    os.environ[mux_client.SOCKET_ENV] = _mux.socket_path
    os.environ[mux_client.PID_ENV] = "%d %s" % (_mux.proc.pid, processes.start_time(_mux.proc.pid) or "")
    atexit.register(_stop_at_exit, _mux)
    return _mux


#: How long a worker waits for another worker that is starting the run's mux.
RENDEZVOUS_TIMEOUT = START_TIMEOUT + 10.0


def controller_pid() -> int:
    """The run's controller: the parent of a worker, or this process."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else os.getpid()


def socket_for_run(pool_size: int, verbosity: int) -> tuple[str, bool]:
    """The socket of this run's mux, and whether it was started here (it
    was not running).

    Connection-only mode: exactly one mux per run, whichever worker comes
    first; the directory lock makes the others wait (bounded) and reuse it.
    A mux that died is replaced by the next worker that needs one.
    """
    pid = controller_pid()
    start = processes.start_time(pid)
    if start is None:
        raise MuxStartError("the run's controller process %d is gone" % pid)
    base = os.path.join(tempfile.gettempdir(), "ansible-svc-%d" % os.getuid())
    directory = os.path.join(base, "run-%d-%s" % (pid, start))
    socket_path = os.path.join(directory, "mux.sock")
    _check_socket_path(socket_path)
    _private_dir(base)
    _private_dir(directory)
    with open(os.path.join(directory, "lock"), "a") as lock:
        deadline = time.monotonic() + RENDEZVOUS_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MuxStartError("timed out after %ds waiting for another worker to start the ansible-svc mux" % RENDEZVOUS_TIMEOUT)
                time.sleep(0.02)
        pidfile = os.path.join(directory, "mux.pid")
        if _names_a_live_process(pidfile):
            return socket_path, False
        if not processes.alive(pid, start):
            raise MuxStartError("the run's controller process %d is gone" % pid)
        _remove_dead_runs(base)
        from ansible_svc.controller import compat
        compat.check_version()  # once per run: only the starting worker gets here
        mux = MuxProcess.start(pool_size, verbosity, directory=directory, watch=(pid, start))
        with open(pidfile, "w") as fp:
            fp.write("%d %s\n" % (mux.proc.pid, processes.start_time(mux.proc.pid) or ""))
        return socket_path, True


def wait_listening(socket_path: str, pid: int, start: str) -> None:
    """Wait until the mux `pid` listens on `socket_path` (it renames its
    socket into place once it listens), bounded by START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(socket_path):
        if not processes.alive(pid, start):
            if os.path.exists(socket_path):
                return
            raise MuxStartError("the ansible-svc mux exited during start-up; see its messages above")
        if time.monotonic() > deadline:
            raise MuxStartError("the ansible-svc mux did not start within %ds" % START_TIMEOUT)
        time.sleep(0.005)


def _check_socket_path(path: str) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise MuxStartError(
            "the mux socket path %s is %d bytes long, more than unix sockets allow (%d): "
            "set TMPDIR to a shorter directory" % (path, len(os.fsencode(path)), MAX_SOCKET_PATH))


def _private_dir(path: str) -> str:
    """`path`, created mode 0700 if missing; refused unless it is a real
    directory of ours that nobody else may enter (it is in a shared /tmp)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise MuxStartError("refusing to use %s: not a private directory of uid %d (mode 0700)" % (path, os.getuid()))
    return path


def _names_a_live_process(pidfile: str) -> bool:
    """Whether `pidfile` ("pid start") names a process that still runs."""
    try:
        with open(pidfile) as fp:
            pid, _sep, start = fp.read().strip().partition(" ")
        return processes.alive(int(pid), start)
    except (OSError, ValueError):
        return False


def _remove_dead_runs(base: str) -> None:
    """Directories of runs whose controller is gone and whose mux could not
    clean up (it was killed too)."""
    for name in os.listdir(base):
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "run" and parts[1].isdigit():
            if not processes.alive(int(parts[1]), parts[2]):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _stop_at_exit(mux: MuxProcess) -> None:
    global _mux
    if os.getpid() != mux._owner_pid:
        return  # a forked child exiting normally must not stop the run's mux
    mux.stop()
    if _mux is mux:
        _mux = None
        os.environ.pop(mux_client.SOCKET_ENV, None)
        os.environ.pop(mux_client.PID_ENV, None)
