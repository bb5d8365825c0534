"""Start and stop the run's mux process.

Runs in the ``ansible-playbook`` controller process (strategy plugin).
Global state: the one :class:`MuxProcess` of this run, and the
``ANSIBLE_SVC_MUX_SOCKET`` environment variable that forked workers inherit.

The mux is a fresh ``python -m ansible_svc.mux`` process, not a fork of the
controller: it inherits none of Ansible's state, threads or open files.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

from ansible_svc.controller import mux_client

LOG = logging.getLogger(__name__)

#: How long the mux may take to start listening (it imports mitogen only).
START_TIMEOUT = 30.0

#: How long the controller waits at exit for the mux's orderly shutdown.
STOP_TIMEOUT = 15.0


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
    def start(cls, pool_size: int, verbosity: int) -> "MuxProcess":
        directory = tempfile.mkdtemp(prefix="ansible-svc-")  # mode 0700
        socket_path = os.path.join(directory, "mux.sock")
        lifeline_r, lifeline_w = os.pipe()
        os.set_inheritable(lifeline_r, True)
        argv = [
            # -P: the cwd (often the playbook's directory) is not put on
            # the mux's import path, so nothing there can be imported or
            # served to a target.
            sys.executable, "-P", "-m", "ansible_svc.mux",
            "--socket", socket_path,
            "--lifeline-fd", str(lifeline_r),
            "--pool-size", str(pool_size),
            "--verbosity", str(verbosity),
        ]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                # Explicitly: ansible-playbook marks fd 2 close-on-exec, and
                # the mux's log lines would silently vanish.
                stderr=2,
                pass_fds=(lifeline_r,),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(lifeline_r)
        mux = cls(proc, directory, socket_path, lifeline_w)
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
            ready, _, _ = select.select([fd], [], [], left)
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
    """Start the run's mux once; later plays of the same run reuse it."""
    global _mux
    if _mux is not None and _mux.alive():
        return _mux
    if _mux is not None:
        LOG.warning("the ansible-svc mux exited unexpectedly (status %s); starting a new one", _mux.proc.returncode)
        _mux.stop()
    _mux = MuxProcess.start(pool_size, verbosity)
    os.environ[mux_client.SOCKET_ENV] = _mux.socket_path
    atexit.register(_stop_at_exit, _mux)
    return _mux


def _stop_at_exit(mux: MuxProcess) -> None:
    global _mux
    if os.getpid() != mux._owner_pid:
        return  # a forked child exiting normally must not stop the run's mux
    mux.stop()
    if _mux is mux:
        _mux = None
        os.environ.pop(mux_client.SOCKET_ENV, None)
