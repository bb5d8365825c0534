"""``poll: N`` without polling: async tasks end when their job does.

Runs in the controller, installed by the strategy before workers fork.
Global state: one wrapper around ``TaskExecutor._poll_async_result``.

Vanilla sleeps ``poll`` seconds between ``async_status`` runs. For a job our
connection started, the worker instead listens on JobResultService and is
woken by the result the job pushes when it ends. If nothing arrives within
the task's ``async`` limit plus a grace (the mux restarted, the interpreter
that would push went away), vanilla's polling of the job file takes over.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.utils.display import Display

from ansible_svc.controller import async_jobs

display = Display()

#: Beyond the task's ``async`` limit, how long to wait for the job's push
#: (the job kills itself at the limit and then writes and pushes).
PUSH_GRACE = 10.0


def install() -> None:
    from ansible.executor.task_executor import TaskExecutor

    original = TaskExecutor._poll_async_result
    if getattr(original, "ansible_svc", False):
        return

    def _poll_async_result(self, result, templar, task_vars=None):
        from ansible_svc.controller.plugin_connection import SvcConnectionBase

        connection = self._connection
        jid = result.get("ansible_job_id")
        if not isinstance(connection, SvcConnectionBase) or not jid:
            return original(self, result, templar, task_vars)
        try:
            answer = connection.wait_async_job(jid, self._task.async_val + PUSH_GRACE)
        except AnsibleError as exc:
            display.vvv("async job %s: waiting for its result failed: %s" % (jid, exc), host=self._host.name)
            answer = None
        if answer is None:
            display.vvv("async job %s: no result pushed, polling its job file" % jid, host=self._host.name)
            return original(self, result, templar, task_vars)
        return finish(self, connection, jid, answer, templar)

    _poll_async_result.ansible_svc = True
    TaskExecutor._poll_async_result = _poll_async_result


def finish(executor, connection, jid, answer, templar):
    """Shape the pushed result as vanilla's poll would, and remove the job
    file as vanilla's poll does once a job is finished."""
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
    connection.async_cleanup(jid, None, async_dir)
    if async_jobs.killed_at_limit(status):
        # Vanilla's poll gives up at the same limit, with these words and
        # its last reading: the job still running.
        running = async_jobs.status_result(handler, jid, {"running": True, "results_file": answer.get("results_file")})
        return dict(
            failed=True,
            msg="async task did not complete within the requested time - %ss" % executor._task.async_val,
            async_result=running,
        )
    return status
