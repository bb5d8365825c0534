"""``poll: N`` without polling: async tasks end when their job does.

Runs in the controller, installed by the strategy before workers fork.
Global state: one wrapper around ``TaskExecutor._poll_async_result``.

Vanilla sleeps ``poll`` seconds between ``async_status`` runs. For a job our
connection started, the worker instead listens on JobResultService and is
woken by the result the job pushes when it ends. If nothing arrives within
the task's ``async`` limit plus a grace (the mux restarted, the interpreter
that would push went away), vanilla's polling of the job file takes over.

The wrapper takes whatever arguments the installed core passes
(``result=`` up to 2.20, ``utr=`` from 2.21) and hands every call for a
connection that is not ours to the original, unchanged. What differs between
cores (the job id's place, the result type) comes from ``compat``; when
``compat``'s check of this hook fails, the hook is not installed.
"""

from __future__ import annotations

import functools
import inspect

from ansible.errors import AnsibleError
from ansible.utils.display import Display

from ansible_svc.controller import async_jobs, compat

display = Display()

#: Beyond the task's ``async`` limit, how long to wait for the job's push
#: (the job kills itself at the limit and then writes and pushes).
PUSH_GRACE = 10.0


def install() -> bool:
    """Wrap ``TaskExecutor._poll_async_result``; False when the installed
    core does not fit the hook (vanilla polling stays)."""
    from ansible.executor.task_executor import TaskExecutor

    current = TaskExecutor._poll_async_result
    if getattr(current, "ansible_svc", False):
        return True
    if not compat.contract_ok("poll"):
        return False
    TaskExecutor._poll_async_result = wrap(current)
    return True


def uninstall() -> None:
    from ansible.executor.task_executor import TaskExecutor

    original = getattr(TaskExecutor._poll_async_result, "ansible_svc_original", None)
    if original is not None:
        TaskExecutor._poll_async_result = original


def wrap(original):
    """The hook around `original` (the core's own method)."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def _poll_async_result(self, *args, **kwargs):
        from ansible_svc.controller.plugin_connection import SvcConnectionBase

        connection = getattr(self, "_connection", None)
        if not isinstance(connection, SvcConnectionBase):
            return original(self, *args, **kwargs)
        core = compat.adapter()
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return original(self, *args, **kwargs)
        result = bound.arguments.get(core.poll_result_parameter)
        templar = bound.arguments.get("templar")
        jid = core.poll_job_id(result)
        if not jid:
            return original(self, *args, **kwargs)
        try:
            answer = connection.wait_async_job(jid, self._task.async_val + PUSH_GRACE)
        except AnsibleError as exc:
            display.vvv("async job %s: waiting for its result failed: %s" % (jid, exc), host=self._host.name)
            answer = None
        if answer is None:
            display.vvv("async job %s: no result pushed, polling its job file" % jid, host=self._host.name)
            return original(self, *args, **kwargs)
        try:
            status, async_dir = shape(self, connection, jid, answer, templar)
        except Exception as exc:  # never fail a task for our shaping: vanilla reads the job file
            compat.warn_once("poll-shape", "ansible-svc: shaping the pushed result of async job %s failed (%s: %s); "
                             "polling as vanilla does" % (jid, type(exc).__name__, exc))
            return original(self, *args, **kwargs)
        if not status.get("finished") and not status.get("failed"):
            # The job's supervisor ended without its final record (killed):
            # vanilla's polling gives the verdict it would have given.
            display.vvv("async job %s: pushed record is not final, polling its job file" % jid, host=self._host.name)
            return original(self, *args, **kwargs)
        connection.async_cleanup(jid, None, async_dir)
        return core.poll_answer(status)

    _poll_async_result.ansible_svc = True
    _poll_async_result.ansible_svc_original = original
    return _poll_async_result


def shape(executor, connection, jid, answer, templar) -> tuple[dict, str]:
    """``(the pushed result as vanilla's poll would return it, as a dict;
    the async dir whose job file the caller removes, as vanilla's poll does
    once a job is finished)``."""
    from ansible.playbook.task import Task
    from ansible.template import Templar

    status_task = Task.load(dict(action="async_status", args={"jid": jid}, check_mode=executor._task.check_mode, environment=executor._task.environment))
    handler = executor._shared_loader_obj.action_loader.get(
        "ansible.legacy.async_status",
        task=status_task,
        connection=connection,
        play_context=executor._play_context,
        loader=executor._loader,
        templar=Templar._from_template_engine(templar),
        shared_loader_obj=executor._shared_loader_obj,
    )
    status = async_jobs.status_result(handler, jid, answer)
    async_dir = handler.get_shell_option("async_dir", default=async_jobs.DEFAULT_ASYNC_DIR)
    if async_jobs.killed_at_limit(status):
        # Vanilla's poll gives up at the same limit, with these words and
        # its last reading: the job still running.
        running = async_jobs.status_result(handler, jid, {"running": True, "results_file": answer.get("results_file")})
        status = dict(
            failed=True,
            msg=compat.adapter().poll_gave_up(executor._task.async_val),
            async_result=running,
        )
    return status, async_dir
