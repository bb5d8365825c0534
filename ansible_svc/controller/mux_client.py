"""Attach a worker (or, briefly, the controller) to the run's mux.

Runs in Ansible worker processes, and in the controller for
``meta: reset_connection``. Global state: at most one attachment per process
(a mitogen broker thread and a router connected to the mux socket), created
on first use and dropped by :func:`detach`, or when the process forks.

The controller must never keep a broker thread: Ansible forks workers from
it, and fork with threads holding locks deadlocks. Callers in the controller
therefore detach right after use.
"""

from __future__ import annotations

import os
import threading

import mitogen.core
import mitogen.fork
import mitogen.master
import mitogen.unix

from ansible_svc import threads

#: Environment variable carrying the mux socket path from the strategy to the
#: workers it forks.
SOCKET_ENV = "ANSIBLE_SVC_MUX_SOCKET"
#: The pid and start time of that mux, which may still be starting.
PID_ENV = "ANSIBLE_SVC_MUX_PID"


class MuxUnavailable(Exception):
    """No mux is running for this process, or it cannot be reached."""


class Attachment(object):
    __slots__ = ("pid", "broker", "router", "mux", "path")

    def __init__(self, pid, broker, router, mux, path):
        self.pid = pid
        self.broker = broker
        self.router = router
        self.mux = mux
        #: The mux's socket; its directory also holds the run's payloads.
        self.path = path


_lock = threading.Lock()
_current: Attachment | None = None
#: The process that last set up mitogen's process-global state (latches'
#: socket pairs, locks). A worker forked from it must reset that state.
_mitogen_pid: int | None = None


def socket_path() -> str | None:
    """The mux socket a ``svc_*`` strategy started for this run, if any."""
    return os.environ.get(SOCKET_ENV) or None


def _socket_for_run() -> str:
    """Connection-only mode: the run's mux, started by the first worker."""
    from ansible import context
    from ansible.utils.display import Display

    from ansible_svc.controller import mux_process, strategy

    forks = context.CLIARGS.get("forks") or 5
    display = Display()
    try:
        path, started = mux_process.socket_for_run(forks + strategy.POOL_HEADROOM, display.verbosity)
    except (mux_process.MuxStartError, OSError) as exc:
        raise MuxUnavailable("cannot start the ansible-svc mux: %s" % exc) from exc
    if started:
        # At -v, once per run: which mode this run is in (the strategy's
        # counterpart is in strategy.install).
        display.v("ansible-svc: connection mode; started the ansible-svc mux for this run: %s" % path)
    return path


def _wait_listening(path: str) -> None:
    """Wait for a mux the strategy started without waiting (PID_ENV)."""
    pid, _sep, start = os.environ.get(PID_ENV, "").partition(" ")
    if not pid.isdigit() or os.path.exists(path):
        return
    from ansible_svc.controller import mux_process
    try:
        mux_process.wait_listening(path, int(pid), start)
    except mux_process.MuxStartError as exc:
        raise MuxUnavailable(str(exc)) from exc


def attach() -> Attachment:
    """Return this process's attachment to the mux, connecting if needed."""
    global _current
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            return _current
        path = socket_path() or _socket_for_run()
        _wait_listening(path)
        global _mitogen_pid
        if _mitogen_pid is not None and _mitogen_pid != os.getpid():
            # Forked from a process that used mitogen (the controller after
            # meta: reset_connection): drop its latches' sockets and locks.
            mitogen.fork.on_fork()
        _mitogen_pid = os.getpid()
        with threads.signals_blocked():
            # Its threads must leave SIGINT/SIGTERM to the worker's main
            # thread, which Ansible ends with them.
            broker = mitogen.master.Broker()
        try:
            router, mux = mitogen.unix.connect(path, broker=broker)
        except mitogen.unix.ConnectError as exc:
            broker.shutdown()
            broker.join()
            raise MuxUnavailable("cannot reach the ansible-svc mux at %s: %s" % (path, exc)) from exc
        _current = Attachment(os.getpid(), broker, router, mux, path)
        return _current


def current() -> Attachment | None:
    """This process's attachment, if it has one (never connects)."""
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            return _current
    return None


def detach(at_exit: bool = False) -> None:
    """Close this process's attachment, if any, and join its broker thread.

    `at_exit`: a worker closing its connection at the end of a task leaves
    its broker to say goodbye to the mux as the process exits (in
    multiprocessing's exit handlers, before it joins threads): Ansible sends
    the task's result right after the close, and need not wait a round trip
    to the mux for it.
    """
    global _current
    with _lock:
        current, _current = _current, None
    if current is None or current.pid != os.getpid():
        return
    if at_exit:
        import multiprocessing.util
        multiprocessing.util.Finalize(None, current.broker.shutdown, exitpriority=0)
        return
    current.broker.shutdown()
    current.broker.join()


def in_worker() -> bool:
    """Whether this is one of Ansible's worker processes (not the
    controller, which must never keep a broker thread across a fork)."""
    import multiprocessing
    return multiprocessing.parent_process() is not None
