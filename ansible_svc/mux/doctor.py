"""DoctorService: a read-only look at the mux for ``ansible_svc.accel.doctor``.

Runs in the mux. Global state: none of its own; it reads the other services
of this mux (the interpreter cache, the job table, the file grants and the
module file cache) through their read-only summaries.

What it reports is safe to print: where and as whom each cached interpreter
logs in, which interpreter it runs, and counts. Never a password (those are
``mitogen.core.Secret`` objects in specs, HMAC digests in cache keys, and
neither is read here), never a key file's content, never ssh arguments.
"""

from __future__ import annotations

import os

import mitogen.service


class DoctorService(mitogen.service.Service):
    """One call, ``report``, answering what the doctor shows of the mux."""

    def __init__(self, router, connections, jobs, files, pushed):
        super().__init__(router)
        self._connections = connections
        self._jobs = jobs
        self._files = files
        self._pushed = pushed

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    def report(self, addresses=None):
        """``{"pid", "interpreters", "files", "jobs"}``.

        `addresses`: ``[transport, host, port]`` lists; only the cached
        interpreters that log in there are listed (every one counts).
        None lists them all.
        """
        if addresses is not None:
            addresses = [tuple(a) for a in addresses]
        return {
            "pid": os.getpid(),
            "interpreters": self._connections.summary(addresses),
            "files": dict(self._files.summary(), **pushed_summary(self._pushed)),
            "jobs": self._jobs.summary(),
        }


def pushed_summary(cache) -> dict:
    """Module files held by the mux's PushFileCache: count and bytes."""
    with cache._lock:
        sizes = [len(data) for data in cache._cache.values()]
    return {"cached": len(sizes), "cached_bytes": sum(sizes)}
