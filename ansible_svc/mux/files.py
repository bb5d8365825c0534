"""GrantedFileService: controller files streamed to the one target that
needs them, once.

Runs in the mux. Global state: the grants of this one service instance.

mitogen's FileService serves a registered path to any context that asks,
for the rest of the run. Ours keeps its name and protocol (so targets use
``mitogen.service.FileService.get`` unchanged) but:

1. a worker registers a path *for a context* (the target interpreter that
   will pull it) with ``register(path, context)``;
2. ``fetch`` serves that path only to that context (the sender must be the
   caller, as in mitogen), and only once: the grant is used up when the
   transfer starts;
3. any other fetch is refused with mitogen's "unregistered" error and logged.
"""

from __future__ import annotations

import logging
import threading

import mitogen.core
import mitogen.service

LOG = logging.getLogger(__name__)


class GrantedFileService(mitogen.service.FileService):
    """FileService whose registrations name the one context they serve."""

    @classmethod
    def name(cls):
        # Targets call mitogen's FileService by its own name.
        return "mitogen.service.FileService"

    #: Bytes in flight to one target stream (mitogen's default: 1 MiB), so
    #: also what the mux may hold per file being streamed. Several hosts
    #: pulling large files over compressing ssh keep both cores busy; with
    #: 1 MiB a stream sat idle while its acknowledgements made their way
    #: back. At least twice the target's acknowledgement batch
    #: (``ansible_svc.target.commands.ACK_BATCH``).
    window_size_bytes = 4 * 1024 * 1024

    #: Bytes per message: four of the broker's 128 KiB reads (mitogen's
    #: default is one), so a quarter of the messages to frame, route and
    #: deliver per file.
    IO_SIZE = 4 * mitogen.core.CHUNK_SIZE - mitogen.core.Message.HEADER_LEN

    def __init__(self, router):
        super().__init__(router)
        self._grants: dict[tuple, int] = {}
        self._grants_lock = threading.Lock()

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"path": mitogen.core.FsPathTypes, "context": mitogen.core.Context})
    def register(self, path, context):
        """Let `context` fetch `path` once."""
        with self._grants_lock:
            key = (path, context.context_id)
            self._grants[key] = self._grants.get(key, 0) + 1

    def summary(self) -> dict:
        """For the doctor (``ansible_svc.mux.doctor``): grants not used yet."""
        with self._grants_lock:
            return {"grants": sum(self._grants.values())}

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    def register_prefix(self, path):
        raise mitogen.service.Error("ansible-svc grants files one by one: register(path, context)")

    @mitogen.service.expose(policy=mitogen.service.AllowAny())
    @mitogen.service.no_reply()
    @mitogen.service.arg_spec({"path": mitogen.core.FsPathTypes, "sender": mitogen.core.Sender})
    def fetch(self, path, sender, msg):
        # One lock around "grant, serve, withdraw": mitogen's checks look at
        # the registered set, and no other fetch may see the path in it.
        with self._grants_lock:
            key = (path, msg.src_id)
            granted = self._grants.get(key, 0)
            if granted:
                if granted == 1:
                    del self._grants[key]
                else:
                    self._grants[key] = granted - 1
                self._paths.add(path)
            else:
                LOG.warning("refused context %s a file it was not sent: %s", msg.src_id, path)
            try:
                super().fetch(path, sender, msg)
            finally:
                self._paths.discard(path)
