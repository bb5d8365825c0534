"""The ``mitogen_async_status`` action: async job status from the mux.

Runs in Ansible worker processes. Global state: none.

Takes the arguments and returns the fields of the builtin ``async_status``.
On hosts served by our connection plugins the answer comes from the mux's
JobStatusService (deduplicated; the job file on the target when the mux does
not know the job); on any other host, and when ``compat``'s check of result
parsing fails for the installed core, it is exactly the builtin action.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.plugins.action.async_status import ActionModule as AsyncStatusAction
from ansible.utils.vars import merge_hash

from ansible_svc.controller import async_jobs, compat
from ansible_svc.controller.plugin_connection import SvcConnectionBase

ARGUMENT_SPEC = {
    "jid": {"type": "str", "required": True},
    "mode": {"type": "str", "choices": ["status", "cleanup"], "default": "status"},
}


class ActionModule(AsyncStatusAction):

    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        ours = isinstance(self._connection, SvcConnectionBase) and not self._connection.switched_off
        if not ours or not compat.contract_ok("results"):
            return super().run(tmp, task_vars)
        results = ActionBase.run(self, tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        jid, mode = args["jid"], args["mode"]
        async_dir = self.get_shell_option("async_dir", default=async_jobs.DEFAULT_ASYNC_DIR)
        become = self._connection.become is not None
        if mode == "cleanup":
            answer = self._connection.async_cleanup(jid, become, async_dir)
            results.update(
                started=False, finished=False, stdout="", stderr="", stdout_lines=[], stderr_lines=[],
                ansible_job_id=jid, erased=answer["results_file"],
            )
            if answer["erased"] is None:
                results.update(failed=True, msg="could not find job", started=True, finished=True)
            return results
        answer = self._connection.async_status(jid, become, async_dir)
        results = merge_hash(results, async_jobs.status_result(self, jid, answer))
        results["ansible_svc"] = {"source": answer["source"], "lookup": answer["lookup"]}
        return results
