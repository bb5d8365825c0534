"""A worker's session with one target: commands, files and module jobs.

Runs in Ansible worker processes (and briefly in the controller for
``reset``). Global state: none of its own; it uses the process's mux
attachment (``mux_client``). It knows nothing of Ansible: it takes a plain
spec dict and raises the exceptions below, which the plugin layer maps to
Ansible's outcomes.
"""

from __future__ import annotations

import logging
import os
import secrets
import time

import mitogen.core
import mitogen.select

from ansible_svc import names
from ansible_svc.rpc import call_async, call_service_async, cast_service, receiver_for
from ansible_svc.controller import ansiballz, async_jobs, mux_client
from ansible_svc.target import asyncjobs, commands, doctor, modules

LOG = logging.getLogger(__name__)

#: After the target acknowledged a job, how long its pushed result may take
#: to come through the mux (it was sent before the acknowledgement).
RESULT_GRACE = 30.0

#: Added to twice the connect timeout to bound a ``get`` from the mux.
CONNECT_GRACE = 60.0

#: Bound on ``meta: reset_connection`` (shutting interpreters down).
RESET_TIMEOUT = 30.0

#: Bound on an async status lookup or cleanup (the mux may read the job
#: file on the target, itself bounded at 30 s).
STATUS_TIMEOUT = 60.0

#: Bound on the doctor's question to the mux (it only reads its tables).
REPORT_TIMEOUT = 30.0

#: Chunk size for fetching files from targets.
FETCH_CHUNK = 4 * 1024 * 1024


class SessionError(Exception):
    """Base of the failures a session reports."""


class TargetUnreachable(SessionError):
    """The target could not be reached, or its interpreter went away."""


class AuthenticationFailed(SessionError):
    """The target refused the login credentials."""


class InterpreterMissing(TargetUnreachable):
    """The target was reached, but the Python to run there does not exist."""


class BecomeFailed(SessionError):
    """The become method refused (wrong or missing password, sudoers)."""


class RemoteError(SessionError):
    """A function on the target raised; the message keeps its traceback."""


_ERRORS = {
    "unreachable": TargetUnreachable,
    "nopython": InterpreterMissing,
    "auth": AuthenticationFailed,
    "become": BecomeFailed,
    "failed": SessionError,
}


def _close_reply_receiver(recv) -> None:
    """Close a call's reply receiver whose reply may have just arrived.

    mitogen drops a one-reply handler when the reply is delivered, so closing
    it afterwards races with the broker and raises KeyError.
    """
    try:
        recv.close()
    except KeyError:
        pass


def _lost_with_the_mux(ctx, mux) -> None:
    """Make `ctx` (a target, reached through the mux) count as gone when
    the mux does, so that receivers waiting for its answers wake up: mitogen
    tells only the mux's own context that its connection dropped."""
    if getattr(ctx, "_ansible_svc_via_mux", None) is not mux:
        ctx._ansible_svc_via_mux = mux
        mitogen.core.listen(mux, "disconnect", lambda: mitogen.core.fire(ctx, "disconnect"))


class Session(object):
    """Contexts for one target spec, taken from the mux connection cache."""

    def __init__(self, spec: dict):
        self.spec = spec
        self._held: list[dict] = []
        self._contexts: dict[tuple, object] = {}

    # -- contexts ---------------------------------------------------------

    def _call_mux(self, method: str, timeout: float | None = None, service: str = names.CONNECTIONS, **kwargs):
        attachment = mux_client.attach()
        recv = call_service_async(attachment.mux, service, method, **kwargs)
        try:
            return recv.get(timeout=timeout).unpickle()
        except mitogen.core.CallError as exc:
            raise RemoteError(str(exc)) from exc
        except mitogen.core.TimeoutError as exc:
            raise TargetUnreachable("the ansible-svc mux did not answer %s within %ss" % (method, timeout)) from exc
        except mitogen.core.ChannelError as exc:
            raise TargetUnreachable("lost the ansible-svc mux: %s" % exc) from exc

    def context(self, become: bool, python: str | None = None):
        """The target context to address, connecting through the mux, with
        the spec's ``retries`` more attempts while the host is unreachable
        (vanilla's ``reconnection_retries`` pauses between them)."""
        wanted = (become, python)
        ctx = self._contexts.get(wanted)
        if ctx is not None:
            return ctx
        spec = dict(self.spec, python=python)
        if not become:
            spec["become"] = None
        # Bounded: our connect may queue behind another worker's for the
        # same host, each limited by the spec's timeout plus the mux's probe.
        for attempt in range(1 + (spec.get("retries") or 0)):
            if attempt:
                pause = min(2 ** (attempt - 1) - 1, 30)
                LOG.debug("%s unreachable: attempt %d in %ds", self.spec.get("host"), attempt + 1, pause)
                time.sleep(pause)
            reply = self._call_mux("get", timeout=CONNECT_GRACE + 2 * (spec.get("timeout") or 30), spec=spec)
            if reply.get("error", {}).get("kind") != "unreachable":
                break
        if "error" in reply:
            error = reply["error"]
            raise _ERRORS.get(error["kind"], SessionError)(error["msg"])
        self._held.append(spec)
        ctx = self._contexts[wanted] = reply["context"]
        _lost_with_the_mux(ctx, mux_client.attach().mux)
        LOG.debug("using %s for %s", ctx.name, self.spec.get("host"))
        return ctx

    def _call(self, become, fn, *args, python=None, **kwargs):
        """Call `fn` on the target's main thread; its answer."""
        return self._answer(call_async(self.context(become, python), fn, *args, **kwargs))

    def _run(self, become, method, **kwargs):
        """Call a TaskRunner method, on a pool thread of the target; its answer."""
        return self._answer(call_service_async(self.context(become), names.TASK_RUNNER, method, **kwargs))

    def _answer(self, recv):
        try:
            return recv.get().unpickle()
        except mitogen.core.CallError as exc:
            raise RemoteError(str(exc)) from exc
        except mitogen.core.ChannelError as exc:
            self.forget()
            raise TargetUnreachable("the target interpreter went away: %s" % exc) from exc

    def close(self) -> None:
        """Return the references this session took."""
        attachment = mux_client.current()
        if self._held and attachment is not None:
            for spec in self._held:
                cast_service(attachment.mux, names.CONNECTIONS, "put", spec=spec)
        self._held = []
        self._contexts = {}

    def forget(self) -> None:
        """Drop cached contexts so that the next call reconnects."""
        self._contexts = {}

    def reset(self) -> int:
        """Shut down the target's interpreters (``meta: reset_connection``)."""
        self._contexts = {}
        return self._call_mux("reset", timeout=RESET_TIMEOUT, spec=self.spec)

    # -- commands and files -----------------------------------------------

    def run_command(self, cmd: str, stdin: bytes | None, become: bool, shell: str | None, cwd: str | None,
                    tty: bool = False):
        term = os.environ.get("TERM") if tty else None  # as ssh -tt sends it
        rc, out, err = self._run(become, "command", cmd=cmd, stdin=stdin, shell=shell, cwd=cwd, tty=tty, term=term)
        return rc, bytes(out), bytes(err)

    def put_file(self, local_path: str, remote_path: str, become: bool = False) -> None:
        size = os.path.getsize(local_path)
        if size <= commands.INLINE_FILE_LIMIT:
            with open(local_path, "rb") as fp:
                data = mitogen.core.Blob(fp.read())
            self._call(become, commands.write_file, remote_path, data)
            return
        attachment = mux_client.attach()
        attachment.mux.call_service(names.FILES, "register", path=local_path, context=self.context(become))
        self._call(become, commands.pull_file, remote_path, attachment.mux.context_id, local_path)

    def fetch_file(self, remote_path: str, local_path: str, become: bool = False) -> None:
        size = self._call(become, commands.file_size, remote_path)
        with open(local_path, "wb") as fp:
            offset = 0
            while offset < size:
                chunk = self._call(become, commands.read_chunk, remote_path, offset, FETCH_CHUNK)
                if not chunk:
                    break
                fp.write(chunk)
                offset += len(chunk)

    # -- module jobs --------------------------------------------------------

    def run_module(self, payload: ansiballz.ModulePayload, become: bool, env: dict, cwd: str | None, isolation: str = "fork"):
        """Run a module job; return ``(rc, stdout, stderr)`` as a pipe would.
        Raises InterpreterMissing when the payload's interpreter is not there.

        If the wait ends early (Ansible's task ``timeout:``, Ctrl-C), the
        target is told to stop the module, so the interpreter is free for
        the next task.
        """
        attachment = mux_client.attach()
        ctx = self.context(become, payload.interpreter)
        path, spec = self._send_payload(attachment, ctx, payload, env, cwd, isolation)
        job_id = secrets.token_hex(16)
        mux = attachment.mux
        results = receiver_for(mux)
        cast_service(mux, names.JOBS, "listen", job_id=job_id, sender=results.to_sender(), context=ctx)
        if isolation == "inline":
            ack = call_async(ctx, modules.run_module, job_id, mux.context_id, path, spec)
        else:
            # On a pool thread of its own: other workers' tasks on the same
            # interpreter (delegation) run at the same time.
            ack = call_service_async(ctx, names.TASK_RUNNER, "module", job_id=job_id, mux_id=mux.context_id,
                                     payload_key=path, spec=spec)
        done = False
        try:
            result = self._await_result(results, ack, job_id)
            done = True
            return result
        finally:
            _close_reply_receiver(results)
            _close_reply_receiver(ack)
            if not done:
                self._cancel(ctx, job_id)

    @staticmethod
    def _send_payload(attachment, ctx, payload, env, cwd, isolation):
        """Have the mux push `payload`'s zip to `ctx` (once per target);
        ``(its key, the spec of a run of it)``."""
        try:
            path = ansiballz.store(payload, os.path.join(os.path.dirname(attachment.path), "payloads"))
        except FileNotFoundError as exc:
            raise TargetUnreachable("the ansible-svc mux is gone (its directory was removed): %s" % exc) from exc
        cast_service(attachment.mux, names.PUSH_FILES, "propagate_to", context=ctx, path=path)
        return path, {
            "params": payload.params,
            "profile": payload.profile,
            "module_fqn": payload.module_fqn,
            "extensions": payload.extensions,
            "rlimit_nofile": payload.rlimit_nofile,
            "env": env,
            "cwd": cwd,
            "isolation": isolation,
        }

    def _cancel(self, ctx, job_id: str) -> None:
        try:
            cast_service(ctx, names.TASK_CONTROL, "cancel", job_id=job_id)
        except mitogen.core.Error as exc:
            LOG.debug("could not cancel job %s: %s", job_id, exc)

    def _await_result(self, results, ack, job_id):
        with mitogen.select.Select([results, ack], oneshot=False) as select:
            acked = False
            while True:
                try:
                    msg = select.get(timeout=RESULT_GRACE if acked else None)
                except mitogen.core.TimeoutError:
                    raise SessionError("job %s finished on the target but its result did not arrive" % job_id)
                except mitogen.core.ChannelError as exc:
                    # The target interpreter (its ssh, its host) or the mux
                    # went away mid-task: UNREACHABLE, as vanilla.
                    self.forget()
                    raise TargetUnreachable("lost the target interpreter or the ansible-svc mux during the task: %s" % exc) from exc
                if msg.receiver is results:
                    result = msg.unpickle()
                    break
                try:
                    reply = msg.unpickle()
                except mitogen.core.CallError as exc:
                    raise RemoteError(str(exc)) from exc
                if not reply.get("pushed"):
                    raise SessionError("the mux refused the result of job %s" % job_id)
                acked = True
                select.remove(ack)
        if "error" in result:
            raise SessionError(result["error"])
        return result["rc"], bytes(result["stdout"]), bytes(result["stderr"])

    # -- async jobs -----------------------------------------------------------
    #
    # A job that starts warm runs in the interpreter its module's tasks run in;
    # any other in the default interpreter of the (become) user, as the job
    # runs the module file with its own shebang interpreter. Status lookups
    # read job files, which any interpreter of that user finds.

    def start_async(self, command: async_jobs.AsyncCommand, become: bool, env: dict, cwd: str | None,
                    payload: ansiballz.ModulePayload | None = None, isolation: str = "fork") -> dict:
        """Start a detached job; ``{"ansible_job_id", "results_file"}``.
        With the module's `payload`, the job starts warm, in the interpreter
        a task of that module runs in (raises InterpreterMissing when there
        is none); without, from the module file, by the user's default one."""
        attachment = mux_client.attach()
        request = {
            "base": command.base_jid,
            "module_path": command.module_path,
            "args_path": command.args_path,
            "argv": command.argv,
            "limit": command.limit,
            "tmpdir": command.tmpdir,
            "env": env,
            "cwd": cwd,
            "async_dir": env.get("ANSIBLE_ASYNC_DIR") or async_jobs.DEFAULT_ASYNC_DIR,
        }
        if payload is None:
            ctx = self.context(become)
            started = self._answer(call_async(ctx, asyncjobs.start, attachment.mux.context_id, request))
        else:
            ctx = self.context(become, payload.interpreter)
            path, spec = self._send_payload(attachment, ctx, payload, env, cwd, isolation)
            started = self._answer(call_async(ctx, asyncjobs.start_warm, attachment.mux.context_id, request, path, spec))
        cast_service(attachment.mux, names.JOBS, "issue", job_id=started["ansible_job_id"], context=ctx)
        return started

    def wait_async(self, jid: str, become: bool, timeout: float) -> dict | None:
        """The job file reading pushed when job `jid` ended, or None when
        none arrived within `timeout` seconds (the caller reads the file)."""
        attachment = mux_client.attach()
        results = receiver_for(attachment.mux)
        try:
            cast_service(attachment.mux, names.JOBS, "listen", job_id=jid, sender=results.to_sender(), context=self.context(become))
            return results.get(timeout=timeout).unpickle()
        except (mitogen.core.TimeoutError, mitogen.core.ChannelError) as exc:
            LOG.debug("async job %s: no pushed result (%s)", jid, exc)
            return None
        finally:
            _close_reply_receiver(results)

    def async_status(self, jid: str, become: bool, async_dir: str) -> dict:
        """Status of job `jid` through the mux's deduplicating JobStatusService."""
        return self._call_mux("status", STATUS_TIMEOUT, names.JOB_STATUS, job_id=jid, context=self.context(become), async_dir=async_dir)

    def async_cleanup(self, jid: str, become: bool, async_dir: str) -> dict:
        """Remove job `jid`'s file and forget the job."""
        return self._call_mux("cleanup", STATUS_TIMEOUT, names.JOB_STATUS, job_id=jid, context=self.context(become), async_dir=async_dir)

    # -- the doctor -------------------------------------------------------------

    def probe(self, become: bool, python: str | None, calls: int) -> dict:
        """For ``ansible_svc.accel.doctor``: the facts of the interpreter a
        task would use (``about``) and the round trips, in seconds, of
        `calls` no-op calls to it (``round_trips``)."""
        about = self._call(become, doctor.about, python=python)
        round_trips = []
        for _call in range(calls):
            start = time.perf_counter()
            self._call(become, doctor.ping, python=python)
            round_trips.append(time.perf_counter() - start)
        return {"about": about, "round_trips": round_trips}

    def mux_report(self, addresses: list) -> dict:
        """The mux's DoctorService report, listing the interpreters cached
        for `addresses` (``[transport, host, port]`` lists)."""
        return self._call_mux("report", REPORT_TIMEOUT, names.DOCTOR, addresses=addresses)
