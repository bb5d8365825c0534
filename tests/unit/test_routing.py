"""ReplyOnlyRouter: what a target may send a worker, with fake streams.

The integration side (real hostile targets) is tests/integration/test_hostile.py.
"""
from __future__ import annotations

import inspect

import mitogen.core
import mitogen.master
import mitogen.unix
import pytest

from ansible_svc.mux import routing

WORKER, TARGET, OTHER_TARGET = 9, 5, 6


class FakeProtocol:
    def __init__(self, auth_id):
        self.auth_id = auth_id


class FakeStream:
    def __init__(self, auth_id):
        self.protocol = FakeProtocol(auth_id)


def message(src_id, dst_id, handle=1000, reply_to=0):
    msg = mitogen.core.Message(src_id=src_id, dst_id=dst_id, handle=handle, reply_to=reply_to)
    msg.auth_id = src_id
    return msg


@pytest.fixture
def router(monkeypatch):
    routed = []
    monkeypatch.setattr(mitogen.master.Router, '_async_route',
                        lambda self, msg, in_stream=None: routed.append((msg, in_stream)))
    broker = mitogen.master.Broker()
    router = routing.ReplyOnlyRouter(broker)
    router.routed = routed
    router.streams = {
        WORKER: FakeStream(auth_id=mitogen.context_id),
        TARGET: FakeStream(auth_id=None),
        OTHER_TARGET: FakeStream(auth_id=None),
    }
    router._stream_by_id.update(router.streams)
    yield router
    broker.shutdown()
    broker.join()


def send(router, msg, via):
    before = len(router.routed)
    router._async_route(msg, router.streams[via])
    return len(router.routed) > before


def test_a_target_answers_a_workers_call_once(router):
    assert send(router, message(WORKER, TARGET, handle=mitogen.core.CALL_FUNCTION, reply_to=1234), via=WORKER)
    assert send(router, message(TARGET, WORKER, handle=1234), via=TARGET)
    assert not send(router, message(TARGET, WORKER, handle=1234), via=TARGET)  # the slot is filled


def test_unasked_messages_from_a_target_are_refused(router, caplog):
    assert not send(router, message(TARGET, WORKER, handle=1000), via=TARGET)
    assert not send(router, message(TARGET, WORKER, handle=1001), via=TARGET)
    warnings = [r for r in caplog.records if r.name == routing.__name__ and r.levelname == 'WARNING']
    assert len(warnings) == 1 and 'refused to route' in warnings[0].getMessage()  # once per connection


def test_only_the_called_target_may_answer(router):
    assert send(router, message(WORKER, TARGET, reply_to=1234), via=WORKER)
    assert not send(router, message(OTHER_TARGET, WORKER, handle=1234), via=OTHER_TARGET)
    assert send(router, message(TARGET, WORKER, handle=1234), via=TARGET)


def test_messages_to_the_mux_itself_are_left_to_its_handlers(router):
    # Service calls and pushes: their own policies decide (test_jobs, test_hostile).
    assert send(router, message(TARGET, mitogen.context_id, handle=mitogen.core.CALL_SERVICE), via=TARGET)


def test_casts_open_no_slot(router):
    assert send(router, message(WORKER, TARGET, handle=1500), via=WORKER)  # no reply_to
    assert not send(router, message(TARGET, WORKER, handle=0), via=TARGET)


def test_open_slots_per_target_are_bounded(router, monkeypatch):
    monkeypatch.setattr(routing, 'MAX_OPEN_REPLIES_PER_STREAM', 3)
    for handle in range(2000, 2005):
        send(router, message(WORKER, TARGET, reply_to=handle), via=WORKER)
    assert not send(router, message(TARGET, WORKER, handle=2000), via=TARGET)  # evicted, oldest first
    assert send(router, message(TARGET, WORKER, handle=2004), via=TARGET)


def test_a_disconnect_forgets_the_targets_slots(router):
    send(router, message(WORKER, TARGET, reply_to=1234), via=WORKER)
    mitogen.core.fire(router.streams[TARGET], 'disconnect')
    assert router.streams[TARGET] not in router._open_replies


def test_contract_mitogen_routes_through_async_route():
    """The hook we override: its signature, that ``route`` goes through it,
    and that mitogen.unix stamps worker streams with the mux's authority."""
    assert list(inspect.signature(mitogen.core.Router._async_route).parameters) == ['self', 'msg', 'in_stream']
    assert 'self._async_route' in inspect.getsource(mitogen.core.Router.route)
    assert '_router._async_route(msg, self.stream)' in inspect.getsource(mitogen.core.MitogenProtocol._receive_one)
    assert 'auth_id=mitogen.context_id' in inspect.getsource(mitogen.unix.Listener.on_accept_client)
