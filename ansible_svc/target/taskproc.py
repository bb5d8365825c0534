"""Task processes: each forked module run, the spare forked ahead, and the
task processes that start async jobs warm.

Runs in target interpreters. Global state: none; what it keeps between
tasks (running task processes, the spare) is in the interpreter's state
object (``modules.Interpreter``), passed in.

A task process is forked from the interpreter, so it starts with the
payloads' compiled code and the preloaded ``module_utils``. It gets fresh
stdio pipes, a session of its own, the signal dispositions of a fresh
Python, the task's environment and working directory, and then runs the
module exactly as the AnsiballZ wrapper would (``wrapper``). The parent
collects its stdout, stderr and exit status. Module code never touches the
interpreter: globals, monkey-patches, ``sys.exit``, crashes and leaked
threads die with the child.
"""

# !mitogen: minify_safe

import atexit
import errno
import gc
import logging
import os
import pickle
import select
import signal
import sys
import time

from ansible_svc.target import forkserver, wrapper

#: After the module's process exits, how long to keep reading output that a
#: daemon it left behind may still hold open (vanilla ssh would hang here).
OUTPUT_GRACE = 2.0

LOG = logging.getLogger(__name__)


def run(state, payload, spec, job_id=None):
    """Run the module described by `spec` in a task process; return
    ``(rc, out, err)``."""
    with state.lock:
        child = take_spare(state, payload.key) or Child.fork(state)
    state.running[child.pid] = job_id
    try:
        child.start(payload.key, spec)
        return collect(child.pid, child.out, child.err)
    finally:
        state.running.pop(child.pid, None)


class Child(object):
    """A forked task process, waiting for its task on a control pipe.

    Forking the interpreter and setting the child up (new session, stdio,
    signals, closing inherited fds) costs a few milliseconds a task. After a
    forked task the interpreter forks the next child while it is idle (the
    *spare*), so the next task starts at once. A spare only runs payloads
    its parent had when it was forked; a task with another payload retires
    it and forks anew.
    """

    __slots__ = ("pid", "control", "out", "err", "payload_keys")

    def __init__(self, pid, control, out, err, payload_keys):
        self.pid = pid
        self.control = control
        self.out = out
        self.err = err
        self.payload_keys = payload_keys

    @classmethod
    def fork(cls, state):
        """Fork a task process; the caller holds ``state.lock``."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        # The child's garbage collector must not walk (and so copy on write)
        # every object it inherited: freeze them for the fork only.
        gc.freeze()
        try:
            pid = os.fork()
        except BaseException:
            gc.unfreeze()
            for fd in (out_r, out_w, err_r, err_w, ctl_r, ctl_w):
                os.close(fd)
            raise
        if pid == 0:
            _child_main(state, ctl_r, out_w, err_w)
        gc.unfreeze()
        for fd in (out_w, err_w, ctl_r):
            os.close(fd)
        return cls(pid, ctl_w, out_r, err_r, frozenset(state.store.payloads))

    def start(self, key, spec):
        """Hand the child its task. If it died meanwhile, collecting it
        reports how."""
        data = memoryview(pickle.dumps((key, spec), pickle.HIGHEST_PROTOCOL))
        try:
            while data:
                data = data[os.write(self.control, data):]
        except OSError as exc:
            LOG.debug("task process %d did not take its task: %s", self.pid, exc)
        finally:
            os.close(self.control)

    def retire(self):
        """End an unused child: it has run nothing, so killing it is safe."""
        for fd in (self.control, self.out, self.err):
            os.close(fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def take_spare(state, key):
    """The spare child, if it can run payload `key` and is still there."""
    child, state.spare = state.spare, None
    if child is None:
        return None
    if key in child.payload_keys and os.waitpid(child.pid, os.WNOHANG)[0] == 0:
        return child
    child.retire()
    return None


def fork_spare(state):
    """Fork the next task's child now, while the interpreter is idle."""
    with state.lock:
        if state.spare is not None or state.ending:
            return
        try:
            state.spare = Child.fork(state)
        except OSError as exc:
            LOG.debug("could not fork a spare task process: %s", exc)


def _child_main(state, control_fd, out_fd, err_fd):
    """Body of a forked task process. Never returns.

    Everything up to reading the task is the same for every task, so it
    can happen ahead of time, in a spare child.
    """
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        if control_fd != 3:
            os.dup2(control_fd, 3)
        os.closerange(4, _max_fd())
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, state.inherited_signals.get(sig, signal.SIG_DFL))
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh Python
        # Keep the old stdio objects alive: collecting them would close fds
        # 0-2, which now are the task's pipes. The child ends in os._exit.
        retained = (sys.stdin, sys.stdout, sys.stderr)  # noqa: F841
        sys.stdin, sys.stdout, sys.stderr = wrapper.fd_stdio()
        # Nothing of the parent's plumbing may act in the child: its atexit
        # hooks, mitogen's log forwarding, and mitogen's importer (which would
        # ship missing modules from the controller, unlike vanilla).
        atexit._clear()
        logging.root.handlers = []
        key, spec = _read_task(3)
        if key is None:
            os._exit(0)  # retired unused, or the interpreter ended
        payload = state.store.payloads[key]
        if spec.get("async"):
            _detach_job(state, payload, spec)
        code = _run_module(state, payload, spec)
    except BaseException:
        import traceback
        traceback.print_exc()
    os._exit(code)


def _run_module(state, payload, spec):
    """Run the task's module in this process, and end it as a Python
    running the AnsiballZ wrapper would end. Never returns."""
    code = 1
    try:
        wrapper.prepare_task(state.store, payload, spec)
        code = wrapper.run_module(payload, spec)
    except SystemExit as exc:
        code = wrapper.exit_code(exc)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            _join_threads()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# -- async jobs, started warm ---------------------------------------------------
#
# An async job's task process hands the job to a supervisor and exits: the
# supervisor (forked from it, so orphaned at once, in a session of its own)
# is the fork server's supervisor (``forkserver.supervise``: job file, time
# limit, result), except that it forks the module from its own warm state
# instead of starting a new Python. Its events (one JSON line each) reach the
# interpreter on the task process's stdout pipe, which it inherits.

def _detach_job(state, payload, spec):
    """Body of an async job's task process. Never returns."""
    request = spec["async"]
    notify_fd = os.dup(1)
    if os.fork() == 0:
        forkserver.supervise(request, notify_fd, run=lambda request, jid: _run_warm(state, payload, spec, request, jid))
    os._exit(0)


def _run_warm(state, payload, spec, request, jid):
    """The supervisor's ``run``: fork the module from this warm process,
    in a session of its own, and collect it within the job's time limit."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, _max_fd())
        sys.stdin, sys.stdout, sys.stderr = wrapper.fd_stdio()
        _run_module(state, payload, spec)
    os.close(out_w)
    os.close(err_w)
    limit = request.get("limit")
    collected = collect(pid, out_r, err_r, deadline=time.time() + limit if limit else None)
    if collected is None:
        return forkserver.timeout_result(pid)
    rc, out, err = collected
    return forkserver.module_result(request, jid, out, err)


def _read_task(fd):
    """Read the pickled ``(payload key, spec)`` the parent writes to `fd`
    and closes; ``(None, None)`` if it closed without writing."""
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return pickle.loads(b"".join(chunks)) if chunks else (None, None)


def _join_threads():
    """Wait for the module's non-daemon threads, as Python does at exit."""
    import threading
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        try:
            shutdown()
        except Exception:
            pass


def _max_fd():
    try:
        return min(os.sysconf("SC_OPEN_MAX"), 65536)
    except (ValueError, OSError):
        return 4096


def collect(pid, out_fd, err_fd, deadline=None):
    """Read both pipes until the child is gone and its output drained;
    ``(rc, out, err)``. None if the child is still running at `deadline`
    (a ``time.time()``): its process group is killed then, as
    async_wrapper kills a job at its time limit."""
    chunks = {out_fd: [], err_fd: []}
    open_fds = [out_fd, err_fd]
    status = None
    grace_end = None
    timed_out = False
    while open_fds:
        now = time.time()
        if status is None and deadline is not None and now >= deadline and not timed_out:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        if grace_end is not None:
            timeout = max(0.0, grace_end - now)
        elif deadline is not None and not timed_out:
            timeout = max(0.0, min(0.5, deadline - now))
        else:
            timeout = 0.5
        try:
            readable = select.select(open_fds, [], [], timeout)[0]
        except (OSError, select.error) as exc:
            if exc.args[0] == errno.EINTR:
                continue
            raise
        for fd in readable:
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                open_fds.remove(fd)
        if status is None:
            waited, st = os.waitpid(pid, os.WNOHANG)
            if waited:
                status = st
                grace_end = time.time() + OUTPUT_GRACE
        elif time.time() >= grace_end:
            break
    for fd in (out_fd, err_fd):
        os.close(fd)
    if status is None:
        status = os.waitpid(pid, 0)[1]
    if timed_out:
        return None
    if os.WIFSIGNALED(status):
        return killed(status, b"".join(chunks[out_fd]), b"".join(chunks[err_fd]))
    return os.WEXITSTATUS(status), b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


def killed(status, out, err):
    """What vanilla's ``/bin/sh -c '<python> ...'`` reports for a module
    killed by a signal: status 128+N, and the signal's name on stderr."""
    sig = os.WTERMSIG(status)
    if sig not in (signal.SIGINT, signal.SIGPIPE):
        name = signal.strsignal(sig) if hasattr(signal, "strsignal") else None
        if name:
            err += ("%s%s\n" % (name, " (core dumped)" if os.WCOREDUMP(status) else "")).encode()
    return 128 + sig, out, err
