"""The mux's router: a target's messages reach a worker only as answers.

Runs in the mux. Global state: none (the reply table lives on the router).

Workers attach to the mux over its unix socket and share its authority;
targets are the mux's children. mitogen's ``unidirectional`` routing already
keeps targets from reaching each other, but it lets any target address any
handle of any worker. Here every call a worker sends to a target opens one
reply slot: (worker, reply handle) answered from that target's stream. A
target's message to a worker must fill such a slot, and fills it once;
anything else is dropped here, before it reaches the worker, and logged
(once per target stream, so a flood does not become a flood of log lines).

Everything a target may send elsewhere goes to the mux itself, where
mitogen's and our services' own policies decide: ``JobResultService.push``
for job ids issued to that target, module and file fetches granted to it.
"""

from __future__ import annotations

import collections
import logging

import mitogen.core
import mitogen.master

LOG = logging.getLogger(__name__)

#: Calls awaiting a reply per target stream. A worker runs one operation on
#: a target at a time, so this is never reached by an honest run; it bounds
#: the table when replies never come (a target that ignores calls).
MAX_OPEN_REPLIES_PER_STREAM = 4096


def _from_worker(stream) -> bool:
    """Workers' streams carry the mux's own authority (``mitogen.unix``
    stamps it on every client); a target's stream carries none."""
    return stream.protocol.auth_id == mitogen.context_id


class ReplyOnlyRouter(mitogen.master.Router):
    """``mitogen.master.Router`` that routes target-to-worker messages only
    when they answer that worker's own call to that target."""

    unidirectional = True

    def __init__(self, broker):
        super().__init__(broker)
        # target stream -> ordered {(worker id, reply handle): None}
        self._open_replies: dict = {}
        self._warned: set = set()

    def _async_route(self, msg, in_stream=None):
        # Only the broker thread calls this, so the table needs no lock.
        if in_stream is not None and msg.dst_id != mitogen.context_id:
            if _from_worker(in_stream):
                self._note_call(msg)
            elif not self._is_reply(msg, in_stream):
                self._refuse(msg, in_stream)
                return
        super()._async_route(msg, in_stream)

    def _note_call(self, msg) -> None:
        out_stream = self._stream_by_id.get(msg.dst_id)
        if not msg.reply_to or out_stream is None or _from_worker(out_stream):
            return
        slots = self._open_replies.get(out_stream)
        if slots is None:
            slots = self._open_replies[out_stream] = collections.OrderedDict()
            mitogen.core.listen(out_stream, "disconnect", lambda: self._forget(out_stream))
        slots[(msg.src_id, msg.reply_to)] = None
        if len(slots) > MAX_OPEN_REPLIES_PER_STREAM:
            slots.popitem(last=False)

    def _is_reply(self, msg, in_stream) -> bool:
        slots = self._open_replies.get(in_stream)
        if slots is None:
            return False
        try:
            del slots[(msg.dst_id, msg.handle)]
        except KeyError:
            return False
        return True

    def _refuse(self, msg, in_stream) -> None:
        if in_stream not in self._warned:
            self._warned.add(in_stream)
            mitogen.core.listen(in_stream, "disconnect", lambda: self._warned.discard(in_stream))
            LOG.warning("refused to route a message from context %s to context %s handle %s: "
                        "a target may send a worker only answers to that worker's calls "
                        "(further refusals on this connection are logged at debug level)",
                        msg.src_id, msg.dst_id, msg.handle)
        else:
            LOG.debug("refused to route a message from context %s to context %s handle %s",
                      msg.src_id, msg.dst_id, msg.handle)

    def disconnect_workers(self) -> None:
        """Drop every worker's connection, at the end of the run.

        Workers orphaned by a killed controller may still wait on the mux;
        mitogen's broker shutdown would wait its whole grace period for
        them to leave. Disconnected, they see the mux gone and exit.
        Broker thread only (``broker.defer`` it).
        """
        for stream in set(self._stream_by_id.values()):
            if _from_worker(stream):
                stream.on_disconnect(self.broker)

    def _forget(self, stream) -> None:
        self._open_replies.pop(stream, None)
