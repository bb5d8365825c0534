"""Async jobs, on the target interpreter's side.

Runs in target interpreters. Global state: ``_SERVER``, this interpreter's
fork server (``forkserver``, a separate process started on first use) and
the jobs it started that still have to report.

A job starts one of two ways, and returns once its job file exists:

- ``start_warm``, for a new-style Python module the worker sent as a
  payload: a task process forked from this interpreter (``taskproc``) hands
  the job to a detached supervisor, which forks the module from its warm
  state, as a task runs, instead of starting a new Python (~15 ms against
  ~140 ms);
- ``start``, for anything else: the fork server runs the module file as
  vanilla's async_wrapper does.

When the job's supervisor exits, we read the job file and push its content
to the mux's JobResultService, so a waiting worker hears of it at once. The
job file stays the durable record: if this interpreter, the connection or
the mux is gone by then, nothing is pushed and readers fall back to the file
(``read_job``).
"""

# !mitogen: minify_safe

import json
import logging
import os
import select
import sys
import threading
import time

import mitogen.core

from ansible_svc import names
from ansible_svc.rpc import cast_service
from ansible_svc.target import forkserver, modules, taskproc

LOG = logging.getLogger(__name__)

#: How long the fork server may take to report that a job started.
START_TIMEOUT = 30.0

_LOCK = threading.Lock()
_SERVER = None


class ForkServerClient(object):
    """This interpreter's handle on its fork server process."""

    def __init__(self, router):
        self.router = router
        source = forkserver.__loader__.get_source(forkserver.__name__)
        self.proc = forkserver.spawn(sys.executable, source)
        self._write_lock = threading.Lock()
        self._starting = {}  # base id -> [threading.Event, event dict]
        self._pushing = {}  # jid -> mux context id
        thread = threading.Thread(target=self._read_events, name="ansible-svc-forkserver", daemon=True)
        thread.start()

    def alive(self):
        return self.proc.poll() is None

    def start(self, request, mux_id):
        waiter = [threading.Event(), None]
        with _LOCK:
            self._starting[request["base"]] = waiter
        try:
            with self._write_lock:
                self.proc.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
                self.proc.stdin.flush()
            if not waiter[0].wait(START_TIMEOUT):
                raise mitogen.core.CallError("the async job did not start within %ss" % (START_TIMEOUT,))
        finally:
            with _LOCK:
                self._starting.pop(request["base"], None)
        event = waiter[1]
        if event["event"] != "started":
            raise mitogen.core.CallError(event.get("msg") or "the async job did not start")
        with _LOCK:
            self._pushing[event["jid"]] = (mux_id, event["results_file"])
        return {"ansible_job_id": event["jid"], "results_file": event["results_file"]}

    def _read_events(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line.decode("utf-8"))
            except ValueError:
                LOG.warning("fork server said something unreadable: %r", line)
                continue
            if event.get("event") == "done":
                with _LOCK:
                    target = self._pushing.pop(event["jid"], None)
                if target is not None:
                    _push_job_file(self.router, event["jid"], *target)
                continue
            with _LOCK:
                waiter = self._starting.get(event.get("base"))
            if waiter is not None:
                waiter[1] = event
                waiter[0].set()
        with _LOCK:
            waiters = list(self._starting.values())
        for waiter in waiters:
            waiter[1] = {"event": "failed", "msg": "the fork server exited"}
            waiter[0].set()


def _push_job_file(router, jid, mux_id, path):
    answer = read_job(path)
    answer["results_file"] = path
    try:
        push_result(mux_id, jid, answer, router=router)
    except mitogen.core.Error as exc:
        LOG.debug("async job %s: result not pushed, the job file keeps it: %s", jid, exc)


def _server(router):
    global _SERVER
    with _LOCK:
        if _SERVER is None or not _SERVER.alive():
            _SERVER = ForkServerClient(router)
        return _SERVER


def fork_server_pid():
    """The pid of this interpreter's fork server, or None."""
    server = _SERVER
    return server.proc.pid if server is not None and server.alive() else None


@mitogen.core.takes_router
def start(mux_id, request, router=None):
    """Start an async job; return its job id and job file path.

    `request` is the fork server's ``start`` request without ``op``. The
    result will be pushed to JobResultService on the mux `mux_id`.
    """
    request = dict(request, op="start")
    return _server(router).start(request, mux_id)


@mitogen.core.takes_router
def start_warm(mux_id, request, payload_key, spec, router=None):
    """Start an async job whose module is the payload `payload_key`, run as
    a forked task runs it (`spec`, as for ``modules.run_job``); return its
    job id and job file path, as ``start``."""
    state = modules.STATE
    payload = state.payload(router, payload_key)
    with state.lock:
        child = taskproc.take_spare(state, payload.key) or taskproc.Child.fork(state)
    child.start(payload.key, dict(spec, **{"async": request}))
    try:
        event = _read_event(child.out, b"", time.time() + START_TIMEOUT)[0]
    except BaseException:
        os.close(child.out)
        raise
    finally:
        os.waitpid(child.pid, 0)  # it exits once the supervisor is forked
        why = _read_available(child.err)
        taskproc.fork_spare(state)
    if event is None or event.get("event") != "started":
        os.close(child.out)
        msg = (event or {}).get("msg") or why.decode("utf-8", "replace").strip()
        raise mitogen.core.CallError(msg or "the async job did not start within %ss" % (START_TIMEOUT,))
    threading.Thread(target=_push_when_done, args=(router, child.out, event, mux_id),
                     name="ansible-svc-job-%s" % event["jid"], daemon=True).start()
    return {"ansible_job_id": event["jid"], "results_file": event["results_file"]}


def _read_event(fd, buf, deadline):
    """The next JSON line on `fd` and the bytes after it; None at EOF or
    at `deadline`."""
    while b"\n" not in buf:
        remaining = deadline - time.time()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None, buf
        data = os.read(fd, 4096)
        if not data:
            return None, buf
        buf += data
    line, buf = buf.split(b"\n", 1)
    return json.loads(line.decode("utf-8")), buf


def _read_all(fd):
    """What is left to read on `fd` (its writers are gone); closes it."""
    chunks = []
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
    finally:
        os.close(fd)


def _read_available(fd):
    """What `fd` holds now, without waiting (a task process that exited
    wrote its traceback there); closes it."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _push_when_done(router, fd, started, mux_id):
    """Wait for a warm job's supervisor to exit (its end of `fd` closes),
    then push the job file."""
    try:
        _read_all(fd)
    except OSError:
        pass
    _push_job_file(router, started["jid"], mux_id, started["results_file"])


@mitogen.core.takes_router
def push_result(mux_id, jid, answer, router=None):
    """Send `answer` as job `jid`'s result to JobResultService on the mux
    `mux_id`; the mux refuses (and logs) it unless `jid` was issued here."""
    cast_service(mitogen.core.Context(router, mux_id), names.JOBS, "push", job_id=jid, result=answer)


def read_job(path):
    """The job file's text, or None when there is no such file."""
    try:
        with open(path) as fp:
            return {"text": fp.read()}
    except FileNotFoundError:
        return {"text": None}
    except OSError as exc:
        return {"text": None, "error": str(exc)}


def read_job_by_id(async_dir, jid):
    path = forkserver.job_path(async_dir, jid)
    return dict(read_job(path), results_file=path)


def remove_job(async_dir, jid):
    """Remove a job file (``mode: cleanup``); False when there was none."""
    path = forkserver.job_path(async_dir, jid)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return {"erased": None, "results_file": path}
    return {"erased": path, "results_file": path}
