"""Run Ansible new-style Python modules inside a target interpreter: the
entry point of a module job, its cancellation, and the interpreter's state.

Runs in target interpreters. Global state: ``STATE``, the one
:class:`Interpreter` of this process.

How a task runs:

1. The worker pushed the module's zip through the mux (``filecache``); the
   interpreter's payload store (``payloads``) takes it from the local cache,
   by content hash, without a round trip when it has seen it before.
2. A task process runs the module (``taskproc``): the one forked ahead while
   the interpreter was idle, or a new one. With ``svc_task_isolation:
   inline`` the interpreter runs it itself (``inline``). Either way the
   module runs as the AnsiballZ wrapper would run it (``wrapper``).
3. The result (exit status, stdout, stderr) is pushed to the mux's
   JobResultService, where the worker waiting for the job hears of it.
"""

# !mitogen: minify_safe

import logging
import os
import signal
import sys
import threading
import time

import mitogen.core
import mitogen.service

from ansible_svc.rpc import call_service_async
from ansible_svc.target import commands, payloads, taskproc

#: How long the mux may take to accept a job's result.
PUSH_TIMEOUT = 60.0

LOG = logging.getLogger(__name__)


class Interpreter(object):
    """What one target interpreter keeps between module jobs."""

    def __init__(self):
        #: Held while the interpreter's state changes (payloads arriving
        #: and their imports, inline runs) and while it forks: a child must
        #: never copy a half-done change. Task processes then run, and are
        #: waited for, unlocked.
        self.lock = threading.RLock()
        self.store = payloads.PayloadStore()
        #: Task processes running now (pid -> job id), hung up on if the
        #: connection goes or the worker cancels the job.
        self.running = {}
        #: The job running inline in this interpreter, if any.
        self.inline_job = None
        #: True once this interpreter is shutting down.
        self.ending = False
        #: SIGHUP and SIGTERM if this interpreter started with them ignored
        #: (a run under ``nohup``): task processes keep that, as vanilla's
        #: inherit it.
        self.inherited_signals = {}
        #: The task process forked ahead of the next task (``taskproc``).
        self.spare = None
        #: The router whose shutdown this state listens for (``set_up``).
        self.router = None

    def payload(self, router, key):
        """The payload `key`, warm: its sources compiled and the core
        ``module_utils`` it ships preloaded, so task processes forked from
        now on share both."""
        with self.lock:
            payload = self.store.get(router, key, given_up=lambda: self.ending)
            self.store.warm(payload)
            return payload


STATE = Interpreter()


def set_up(router):
    """Clean up running modules and payloads however this interpreter ends.
    Main thread only (signal handlers); before the service pool exists.

    An orderly end is the broker's shutdown: modules are hung up on first,
    then the pool stops and joins its threads (which wait for the modules
    they run), so the pool must be created after this. But when the login
    interpreter goes first, sshd hangs up its session and sudo passes SIGHUP
    or SIGTERM on to a become interpreter before its own shutdown could run.
    """
    if STATE.router is not None:
        return
    STATE.router = router
    mitogen.core.listen(router.broker, "shutdown", _kill_running)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        if signal.getsignal(sig) == signal.SIG_IGN:
            STATE.inherited_signals[sig] = signal.SIG_IGN
        signal.signal(sig, _on_hangup)


def _on_hangup(signum, frame):
    _kill_running()
    STATE.store.remove_directory()
    os._exit(128 + signum)


def _kill_running():
    """Hang up on running modules when the connection goes away.

    Vanilla ssh gets the same from sshd: a SIGHUP to the session. Modules
    and commands that ignore it are killed, so nothing outlives the run.
    """
    STATE.ending = True
    _hang_up(list(STATE.running) + list(commands.RUNNING))


def _hang_up(pids):
    """SIGHUP the process groups of `pids`, then SIGKILL those still there
    after a second."""
    for sig in (signal.SIGHUP, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except OSError:
                pass
        deadline = time.time() + 1.0
        while any(pid in STATE.running or pid in commands.RUNNING for pid in pids) and time.time() < deadline:
            time.sleep(0.05)


class TaskControl(mitogen.service.Service):
    """Cancels a module run when the worker gives up on it (the task's
    ``timeout:``, Ctrl-C). A service runs on a pool thread, so it is heard
    while the main thread waits for the module."""

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.no_reply()
    @mitogen.service.arg_spec({"job_id": str})
    def cancel(self, job_id):
        pids = [pid for pid, job in list(STATE.running.items()) if job == job_id]
        if pids:
            LOG.debug("job %s cancelled: hanging up on %s", job_id, pids)
            _hang_up(pids)
        elif job_id == STATE.inline_job:
            # An inline module cannot be stopped safely in the middle: end
            # this interpreter with the processes the module started; the
            # next task starts a new interpreter.
            LOG.warning("job %s cancelled while running inline: exiting", job_id)
            # No import here: an inline run has mitogen's importer unhooked.
            asyncjobs = sys.modules.get("ansible_svc.target.asyncjobs")
            spare = asyncjobs.fork_server_pid() if asyncjobs is not None else None
            for pid in _descendants(os.getpid(), spare=spare):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os._exit(1)


def _descendants(root, spare=None):
    """Pids of the processes below `root` (Linux /proc), except the subtree
    of `spare` (the async fork server: its jobs must live on)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as fp:
                ppid = int(fp.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid == spare:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@mitogen.core.takes_router
def run_module(job_id, mux_id, payload_key, spec, router=None):
    """Run one module job inline, on the main thread (forked ones run on
    pool threads: ``runner.TaskRunner.module``)."""
    set_up(router)
    return run_job(router, job_id, mux_id, payload_key, spec)


def run_job(router, job_id, mux_id, payload_key, spec):
    """Run one module job and push its result to the mux's JobResultService.

    Returns a small acknowledgement; the result itself travels through the
    service so that it reaches whoever listens for the job.
    """
    from ansible_svc import names
    forked = False
    try:
        payload = STATE.payload(router, payload_key)
        if spec.get("isolation") == "inline":
            from ansible_svc.target import inline
            with STATE.lock:
                STATE.inline_job = job_id
                try:
                    rc, out, err = inline.run_inline(STATE.store, payload, spec)
                finally:
                    STATE.inline_job = None
        else:
            rc, out, err = taskproc.run(STATE, payload, spec, job_id)
            forked = True
        result = {"rc": rc, "stdout": mitogen.core.Blob(out), "stderr": mitogen.core.Blob(err)}
    except mitogen.core.TimeoutError:
        result = {"error": "module payload %s did not arrive from the controller within %ss" % (payload_key, payloads.PAYLOAD_TIMEOUT)}
    accepted = _push(mitogen.core.Context(router, mux_id), names.JOBS, job_id, result)
    if forked:
        taskproc.fork_spare(STATE)
    return {"pushed": accepted}


def _push(mux, service, job_id, result):
    """Push a job's result; whether the mux accepted it. Gives up when the
    interpreter starts shutting down (its broker no longer carries the
    answer, and its shutdown waits for this thread) or after PUSH_TIMEOUT."""
    recv = call_service_async(mux, service, "push", job_id=job_id, result=result)
    deadline = time.time() + PUSH_TIMEOUT
    while not STATE.ending and time.time() < deadline:
        try:
            return bool(recv.get(timeout=0.2).unpickle())
        except mitogen.core.TimeoutError:
            continue
        except mitogen.core.Error as exc:
            LOG.debug("job %s: push failed: %s", job_id, exc)
            return False
    return False
