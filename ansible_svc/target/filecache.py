"""Module code cache that travels hop by hop from the mux to targets.

Runs in the mux (where workers ask it to ``propagate_to`` a target) and in
every target interpreter (where it receives ``store_and_forward`` calls and
the module runner reads from it). Global state: one instance per process,
activated by mitogen's service pool on first use.

How it works:

1. A worker writes a module payload to a content-addressed file on the
   controller (its name is the SHA-1 of its bytes) and asks the mux to
   ``propagate_to(context, path)``.
2. The mux reads the file once, and sends its bytes down each stream towards
   the target once: later requests for the same path send only a small
   ``forward`` note (mitogen's ``PushFileService`` bookkeeping).
3. The target's runner calls :meth:`PushFileCache.get_bounded`, which waits
   for the bytes with a time limit instead of forever.

Because keys are content hashes, a changed module is a new key: nothing
stale is ever served, so no invalidation protocol is needed.
"""

# !mitogen: minify_safe

import time

import mitogen.core
import mitogen.service

#: How often a waiting reader checks whether to give up.
GIVE_UP_CHECK = 0.2


class PushFileCache(mitogen.service.PushFileService):
    """mitogen's PushFileService with a bounded wait on the receiving side."""

    def get_bounded(self, path, timeout, given_up=lambda: False):
        """Return the bytes pushed for `path`, waiting at most `timeout` s,
        and no longer once `given_up()` is true (the interpreter is ending:
        nothing will arrive, and its shutdown waits for this thread).

        Raises :class:`mitogen.core.TimeoutError` when nothing arrives, for
        example because the mux was told about a file it could not read.
        """
        latch = mitogen.core.Latch()
        self._lock.acquire()
        try:
            if path in self._cache:
                return self._cache[path]
            self._waiters.setdefault(path, []).append(lambda: latch.put(None))
        finally:
            self._lock.release()
        deadline = time.time() + timeout
        while True:
            try:
                latch.get(timeout=min(GIVE_UP_CHECK, max(0.0, deadline - time.time())))
                return self._cache[path]
            except mitogen.core.TimeoutError:
                if given_up() or time.time() >= deadline:
                    raise


def get_service(router):
    """The process-wide instance, created by the service pool on demand.

    Called on the target's main thread, which is where mitogen wants a pool
    to be bootstrapped (see ``mitogen.core.Dispatcher._on_call_service``).
    """
    pool = mitogen.service.get_or_create_pool(router=router)
    return pool.get_service(PushFileCache.name())
