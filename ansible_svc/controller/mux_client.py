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

#: Environment variable carrying the mux socket path from the strategy to the
#: workers it forks.
SOCKET_ENV = "ANSIBLE_SVC_MUX_SOCKET"


class MuxUnavailable(Exception):
    """No mux is running for this process, or it cannot be reached."""


class Attachment(object):
    __slots__ = ("pid", "broker", "router", "mux")

    def __init__(self, pid, broker, router, mux):
        self.pid = pid
        self.broker = broker
        self.router = router
        self.mux = mux


_lock = threading.Lock()
_current: Attachment | None = None
#: The process that last set up mitogen's process-global state (latches'
#: socket pairs, locks). A worker forked from it must reset that state.
_mitogen_pid: int | None = None


def socket_path() -> str | None:
    return os.environ.get(SOCKET_ENV) or None


def attach() -> Attachment:
    """Return this process's attachment to the mux, connecting if needed."""
    global _current
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            return _current
        path = socket_path()
        if not path:
            raise MuxUnavailable(
                "no ansible-svc mux is running: set 'strategy = svc_linear' (or its FQCN "
                "ansible_svc.accel.svc_linear) in ansible.cfg, or ANSIBLE_STRATEGY"
            )
        global _mitogen_pid
        if _mitogen_pid is not None and _mitogen_pid != os.getpid():
            # Forked from a process that used mitogen (the controller after
            # meta: reset_connection): drop its latches' sockets and locks.
            mitogen.fork.on_fork()
        _mitogen_pid = os.getpid()
        broker = mitogen.master.Broker()
        try:
            router, mux = mitogen.unix.connect(path, broker=broker)
        except mitogen.unix.ConnectError as exc:
            broker.shutdown()
            broker.join()
            raise MuxUnavailable("cannot reach the ansible-svc mux at %s: %s" % (path, exc)) from exc
        _current = Attachment(os.getpid(), broker, router, mux)
        return _current


def detach() -> None:
    """Close this process's attachment, if any, and join its broker thread."""
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None and current.pid == os.getpid():
        current.broker.shutdown()
        current.broker.join()
