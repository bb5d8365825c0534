"""The target's bounded wait for pushed module code."""
from __future__ import annotations

import threading
import time

import mitogen
import mitogen.core
import mitogen.master
import pytest

from ansible_svc.target.filecache import PushFileCache


@pytest.fixture
def cache():
    broker = mitogen.master.Broker()
    try:
        yield PushFileCache(router=mitogen.master.Router(broker))
    finally:
        broker.shutdown()
        broker.join()


def test_returns_what_arrives_while_waiting(cache):
    here = mitogen.core.Context(cache.router, mitogen.context_id)
    threading.Timer(0.3, cache.store_and_forward, ('/k', b'code', here)).start()
    assert cache.get_bounded('/k', timeout=10) == b'code'
    assert cache.get_bounded('/k', timeout=0) == b'code'


def test_gives_up_when_told_the_interpreter_is_ending(cache):
    """A pool thread waiting for code that will never come must not hold up
    the interpreter's shutdown (which joins the pool's threads) for the
    whole timeout."""
    ending = []
    threading.Timer(0.3, ending.append, (True,)).start()
    started = time.monotonic()
    with pytest.raises(mitogen.core.TimeoutError):
        cache.get_bounded('/never', timeout=60, given_up=lambda: bool(ending))
    assert time.monotonic() - started < 30, 'waited for the timeout, not for the end'


def test_times_out(cache):
    with pytest.raises(mitogen.core.TimeoutError):
        cache.get_bounded('/never', timeout=0.3)
