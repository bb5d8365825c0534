"""JobStatusService: answers async status requests (``mitogen_async_status``).

Runs in the mux. Global state: none of its own; it reads JobResultService,
and its invoker (``dedup.FinalAnswerInvoker``) holds the waiters and the
cache of final answers.

A status answer comes from JobResultService when the interpreter that
started the job is the one asked about (it will push the result when the job
ends). Otherwise (the job was started by an earlier ``ansible-playbook`` run,
or by an interpreter that has since gone) it comes from the job file on the
target, so nothing is lost. Concurrent identical requests run one lookup;
finished answers are cached until ``cleanup``.
"""

from __future__ import annotations

import json
import logging

import mitogen.core
import mitogen.service

from ansible_svc.mux.dedup import FinalAnswerInvoker, deduplicate
from ansible_svc.rpc import call_async
from ansible_svc.target import asyncjobs

LOG = logging.getLogger(__name__)

#: Bound on reading or removing a job file on the target.
TARGET_TIMEOUT = 30.0


def is_finished(text) -> bool:
    """Whether job file content is final, as the async_status module reads it:
    a record without ``started`` is a result; one with it says ``finished``."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return False
    return isinstance(data, dict) and ("started" not in data or bool(data.get("finished")))


class FinalAnswerJobInvoker(FinalAnswerInvoker):
    def __init__(self, service):
        super().__init__(service)
        service.invoker = self


class JobStatusService(mitogen.service.Service):
    """Status of async jobs, deduplicated."""

    invoker_class = FinalAnswerJobInvoker

    def __init__(self, router, jobs):
        super().__init__(router)
        self._jobs = jobs
        self.invoker = None

    def is_final(self, method_name, answer) -> bool:
        return is_finished(answer.get("text"))

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"job_id": str, "context": mitogen.core.Context, "async_dir": str})
    @deduplicate
    def status(self, job_id, context, async_dir, run):
        """``{"text": job file content or None, "results_file", "source",
        "lookup"}``; ``lookup`` numbers the lookup that produced the answer,
        so callers sharing one answer can see it."""
        known = self._jobs.get(job_id)
        if known.get("owner_id") == context.context_id:
            if known["state"] == "done":
                return dict(known["result"], source="service", lookup=run)
            return {"text": None, "running": True, "source": "service", "lookup": run}
        answer = self._on_target(context, asyncjobs.read_job_by_id, async_dir, job_id)
        return dict(answer, source="job_file", lookup=run)

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"job_id": str, "context": mitogen.core.Context, "async_dir": str})
    def cleanup(self, job_id, context, async_dir):
        """Remove the job file and forget the job: ``{"erased", "results_file"}``."""
        answer = self._on_target(context, asyncjobs.remove_job, async_dir, job_id)
        self._jobs.forget(job_id)
        self.invoker.forget(job_id=job_id)
        return answer

    def _on_target(self, context, fn, *args):
        try:
            return call_async(context, fn, *args).get(timeout=TARGET_TIMEOUT).unpickle()
        except mitogen.core.TimeoutError:
            raise mitogen.core.CallError("the target did not answer within %ss" % (TARGET_TIMEOUT,))
        except mitogen.core.ChannelError as exc:
            raise mitogen.core.CallError("the target interpreter went away: %s" % (exc,))
