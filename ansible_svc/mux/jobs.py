"""JobResultService: where module results meet whoever waits for them.

Runs in the mux. Global state: the job table of this one service instance.

How it works:

1. A worker picks a random job id and calls ``listen(job_id, sender,
   context)`` without waiting for a reply. That issues the id to `context`
   (the target interpreter that will run the job) and names where the result
   goes. Async jobs are issued with ``issue(job_id, context)`` when they
   start, and listened for later (``poll: N``) or never (``poll: 0``).
2. The target runs the job and calls ``push(job_id, result)``. A push is
   accepted only from the context the id was issued to; anything else is
   refused and logged.
3. The result is sent to the listener at once, and only a tombstone kept.
   ``get(job_id)`` answers without blocking, for pollers of jobs that have
   no listener; their results stay until ``forget`` or ``UNCLAIMED_TTL``.

The listen and the push arrive on different streams and may be handled by
different pool threads in either order, so a push for an id not issued yet
is parked (with the pusher's identity) for ``PARK_TTL`` seconds and checked
when the listen arrives. A target may have at most ``MAX_PARKED_PER_TARGET``
results of at most ``MAX_PARKED_BYTES_PER_TARGET`` bytes parked: a target
pushing results for ids nobody issued cannot grow the mux.
"""

from __future__ import annotations

import logging
import threading
import time

import mitogen.core
import mitogen.service

LOG = logging.getLogger(__name__)

#: How long a pushed result waits for its listener before it is dropped, and
#: how long a delivered result stays available to ``get``.
UNCLAIMED_TTL = 600.0

#: How long a result pushed for an id not issued yet waits for its issue
#: (the race it covers is between two messages in flight: milliseconds).
PARK_TTL = 30.0

#: Upper bounds on parked jobs and their bytes, all targets together, so
#: misbehaving targets cannot grow the mux even when there are many.
MAX_PARKED = 10000
MAX_PARKED_BYTES = 512 * 1024 * 1024

#: Per pushing target: parked results, and their bytes. A target runs one
#: task at a time per interpreter, plus async jobs ending at once.
MAX_PARKED_PER_TARGET = 64
MAX_PARKED_BYTES_PER_TARGET = 64 * 1024 * 1024


class Job(object):
    __slots__ = ("job_id", "owner_id", "sender", "result", "pusher_id", "stamp", "delivered", "size")

    def __init__(self, job_id):
        self.job_id = job_id
        self.owner_id = None
        self.sender = None
        self.result = None
        self.pusher_id = None
        self.stamp = time.monotonic()
        self.delivered = False
        self.size = 0

    @property
    def parked(self) -> bool:
        """A result waits for an issue that has not come."""
        return self.owner_id is None and self.result is not None


class JobResultService(mitogen.service.Service):
    """Job ids issued to targets, and their results."""

    def __init__(self, router):
        super().__init__(router)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.refused = 0

    def _expire_locked(self):
        if len(self._jobs) < 64:
            return  # cheap in the common case; the caps bound the rest
        now = time.monotonic()
        for job_id in [j for j, job in self._jobs.items()
                       if now - job.stamp > (PARK_TTL if job.parked else UNCLAIMED_TTL)]:
            del self._jobs[job_id]

    def _parking_refused_locked(self, pusher_id: int, size: int):
        """Why a target may not park one more result, or None."""
        if len(self._jobs) >= MAX_PARKED:
            return "too many parked results"
        parked = [job for job in self._jobs.values() if job.parked]
        if sum(job.size for job in parked) + size > MAX_PARKED_BYTES:
            return "the results parked for ids never issued would exceed %d bytes" % MAX_PARKED_BYTES
        mine = [job for job in parked if job.pusher_id == pusher_id]
        if len(mine) >= MAX_PARKED_PER_TARGET:
            return "it has %d results parked for ids never issued" % len(mine)
        if sum(job.size for job in mine) + size > MAX_PARKED_BYTES_PER_TARGET:
            return "its results parked for ids never issued would exceed %d bytes" % MAX_PARKED_BYTES_PER_TARGET
        return None

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.no_reply()
    @mitogen.service.arg_spec({"job_id": str, "context": mitogen.core.Context})
    def issue(self, job_id, context):
        """Issue `job_id` to `context` with nobody listening yet (async jobs:
        the result is kept for ``get`` or a later ``listen``)."""
        self._claim(job_id, context, None)

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.no_reply()
    @mitogen.service.arg_spec({"job_id": str, "sender": mitogen.core.Sender, "context": mitogen.core.Context})
    def listen(self, job_id, sender, context):
        """Issue `job_id` to `context`; send its result to `sender`."""
        self._claim(job_id, context, sender)

    def _claim(self, job_id, context, sender):
        with self._lock:
            self._expire_locked()
            job = self._jobs.get(job_id)
            if job is None:
                job = self._jobs[job_id] = Job(job_id)
            elif job.owner_id not in (None, context.context_id):
                LOG.warning("job %s: already issued to context %s, not to %s", job_id, job.owner_id, context.context_id)
                return
            elif sender is not None and (job.sender is not None or job.delivered):
                LOG.warning("job %s: second listen ignored", job_id)
                return
            job.owner_id = context.context_id
            if sender is not None:
                job.sender = sender
            if job.result is None:
                return
            if job.pusher_id != job.owner_id:
                # The parked result came from a context the id was not
                # issued to: drop it and wait for the real one.
                self._refuse_locked(job, job.pusher_id)
                job.result = None
                job.pusher_id = None
                return
            if job.sender is None:
                return
        self._deliver(job)

    @mitogen.service.expose(policy=mitogen.service.AllowAny())
    @mitogen.service.arg_spec({"job_id": str, "result": dict})
    def push(self, job_id, result, msg):
        """Deliver `result` for `job_id`; True when accepted."""
        size = len(getattr(msg, "data", b""))
        with self._lock:
            self._expire_locked()
            job = self._jobs.get(job_id)
            if job is None:
                why = self._parking_refused_locked(msg.src_id, size)
                if why:
                    LOG.warning("job %s: refused push from context %d: %s", job_id, msg.src_id, why)
                    self.refused += 1
                    return False
                job = self._jobs[job_id] = Job(job_id)
            elif job.result is not None or job.delivered:
                self._refuse_locked(job, msg.src_id, "a result was already pushed")
                return False
            elif job.owner_id is not None and job.owner_id != msg.src_id:
                self._refuse_locked(job, msg.src_id)
                return False
            job.result = result
            job.pusher_id = msg.src_id
            job.size = size
            job.stamp = time.monotonic()
            if job.sender is None:
                return True
        self._deliver(job)
        return True

    def _refuse_locked(self, job, pusher_id, why=None):
        self.refused += 1
        LOG.warning(
            "job %s: refused result pushed by context %s: %s",
            job.job_id, pusher_id, why or "the job was issued to context %s" % (job.owner_id,),
        )

    def _deliver(self, job):
        """Send the result to its listener, then keep only a tombstone: a
        listened job has exactly one reader, results can be large, and a
        replayed push must still be refused (until UNCLAIMED_TTL)."""
        with self._lock:
            result, sender = job.result, job.sender
            job.result = job.sender = None
            job.delivered = True
            job.stamp = time.monotonic()
        try:
            sender.send(result)
        except mitogen.core.Error as exc:
            LOG.debug("job %s: listener went away: %s", job.job_id, exc)

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"job_id": str})
    def get(self, job_id):
        """Non-blocking status: ``{'state': 'unknown'|'pending'|'done'}``,
        with ``owner_id`` (the context the job was issued to) when known."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.delivered:
                return {"state": "unknown"}
            if job.result is None:
                return {"state": "pending", "owner_id": job.owner_id}
            return {"state": "done", "owner_id": job.owner_id, "result": job.result}

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"job_id": str})
    def forget(self, job_id):
        """Drop what is known of `job_id` (async ``mode: cleanup``)."""
        with self._lock:
            return self._jobs.pop(job_id, None) is not None

    def summary(self) -> dict:
        """Counts for the doctor (``ansible_svc.mux.doctor``): jobs issued
        and not done (``running``), results waiting for a reader
        (``held``), results waiting for their issue (``parked``), delivered
        ones remembered (``delivered``), and pushes refused."""
        with self._lock:
            jobs = list(self._jobs.values())
            refused = self.refused
        return {
            "running": sum(1 for job in jobs if job.owner_id is not None and job.result is None and not job.delivered),
            "held": sum(1 for job in jobs if job.owner_id is not None and job.result is not None),
            "parked": sum(1 for job in jobs if job.parked),
            "delivered": sum(1 for job in jobs if job.delivered),
            "refused": refused,
        }

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    def stats(self):
        """Counters for tests and debugging."""
        with self._lock:
            live = sum(1 for job in self._jobs.values() if not job.delivered)
            return {"jobs": live, "refused": self.refused}
