"""JobResultService logic, with a real router and fake messages/senders."""
from __future__ import annotations

import time

import mitogen.core
import pytest

from ansible_svc.mux.jobs import JobResultService


class FakeMsg:
    def __init__(self, src_id):
        self.src_id = src_id


class FakeSender:
    def __init__(self, fail=False):
        self.sent = []
        self.fail = fail

    def send(self, value):
        if self.fail:
            raise mitogen.core.ChannelError('listener gone')
        self.sent.append(value)


@pytest.fixture
def svc(router):
    return JobResultService(router)


def ctx(router, context_id):
    return mitogen.core.Context(router, context_id)


RESULT = {'rc': 0, 'stdout': b'out', 'stderr': b''}


def test_listen_then_push(svc, router):
    sender = FakeSender()
    svc.listen('j1', sender, ctx(router, 11))
    assert svc.get('j1') == {'state': 'pending', 'owner_id': 11}
    assert svc.push('j1', RESULT, FakeMsg(11)) is True
    assert sender.sent == [RESULT]
    assert svc.refused == 0
    # Delivered to its one listener, then forgotten.
    assert svc.get('j1') == {'state': 'unknown'}
    assert svc.stats() == {'jobs': 0, 'refused': 0}


def test_push_then_listen(svc, router):
    assert svc.push('j2', RESULT, FakeMsg(12)) is True
    assert svc.get('j2') == {'state': 'done', 'owner_id': None, 'result': RESULT}
    sender = FakeSender()
    svc.listen('j2', sender, ctx(router, 12))
    assert sender.sent == [RESULT]
    assert svc.get('j2') == {'state': 'unknown'}
    assert svc.refused == 0


def test_push_from_wrong_context_refused(svc, router):
    sender = FakeSender()
    svc.listen('j3', sender, ctx(router, 13))
    assert svc.push('j3', {'rc': 99}, FakeMsg(666)) is False
    assert svc.refused == 1
    assert sender.sent == []
    assert svc.get('j3') == {'state': 'pending', 'owner_id': 13}
    # The rightful owner can still deliver.
    assert svc.push('j3', RESULT, FakeMsg(13)) is True
    assert sender.sent == [RESULT]


def test_parked_push_from_wrong_context_refused_at_listen(svc, router):
    assert svc.push('j4', {'rc': 99}, FakeMsg(666)) is True   # parked: owner not known yet
    sender = FakeSender()
    svc.listen('j4', sender, ctx(router, 14))
    assert sender.sent == []
    assert svc.refused == 1
    assert svc.get('j4') == {'state': 'pending', 'owner_id': 14}
    assert svc.push('j4', RESULT, FakeMsg(14)) is True
    assert sender.sent == [RESULT]


def test_second_push_refused_while_parked(svc, router):
    assert svc.push('j5', RESULT, FakeMsg(15)) is True
    assert svc.push('j5', {'rc': 1}, FakeMsg(15)) is False
    assert svc.refused == 1
    sender = FakeSender()
    svc.listen('j5', sender, ctx(router, 15))
    assert sender.sent == [RESULT]


def test_second_push_refused_after_delivery(svc, router):
    # A job id is issued once; a replayed push after delivery must not be
    # accepted (nor parked as a fresh result).
    sender = FakeSender()
    svc.listen('j6', sender, ctx(router, 16))
    assert svc.push('j6', RESULT, FakeMsg(16)) is True
    assert svc.push('j6', {'rc': 1}, FakeMsg(16)) is False
    assert sender.sent == [RESULT]
    assert svc.get('j6')['state'] != 'done'


def test_second_listen_ignored(svc, router):
    first, second = FakeSender(), FakeSender()
    svc.listen('j7', first, ctx(router, 17))
    svc.listen('j7', second, ctx(router, 99))
    assert svc.push('j7', RESULT, FakeMsg(99)) is False
    assert svc.push('j7', RESULT, FakeMsg(17)) is True
    assert first.sent == [RESULT] and second.sent == []


def test_listener_gone_does_not_raise(svc, router):
    svc.listen('j8', FakeSender(fail=True), ctx(router, 18))
    assert svc.push('j8', RESULT, FakeMsg(18)) is True
    assert svc.get('j8') == {'state': 'unknown'}


def test_unknown_job(svc):
    assert svc.get('nope') == {'state': 'unknown'}


def test_issued_async_job_keeps_result_until_listened(svc, router):
    # poll: 0 jobs are issued when they start; their result waits for get
    # (mitogen_async_status) or a later listen (poll: N), unconsumed by get.
    svc.issue('a1', ctx(router, 21))
    assert svc.get('a1') == {'state': 'pending', 'owner_id': 21}
    assert svc.push('a1', RESULT, FakeMsg(21)) is True
    assert svc.get('a1') == {'state': 'done', 'owner_id': 21, 'result': RESULT}
    assert svc.get('a1')['state'] == 'done'
    sender = FakeSender()
    svc.listen('a1', sender, ctx(router, 21))
    assert sender.sent == [RESULT]


def test_issued_job_refuses_other_pushers_and_listeners(svc, router):
    svc.issue('a2', ctx(router, 22))
    assert svc.push('a2', RESULT, FakeMsg(23)) is False
    intruder = FakeSender()
    svc.listen('a2', intruder, ctx(router, 23))
    assert svc.push('a2', RESULT, FakeMsg(22)) is True
    assert intruder.sent == []
    assert svc.refused == 1


def test_parked_push_checked_at_issue(svc, router):
    # A fast job may push before the worker's issue arrives.
    assert svc.push('a3', RESULT, FakeMsg(24)) is True
    svc.issue('a3', ctx(router, 25))
    assert svc.get('a3') == {'state': 'pending', 'owner_id': 25}
    assert svc.refused == 1


def test_forget(svc, router):
    svc.issue('a4', ctx(router, 26))
    svc.push('a4', RESULT, FakeMsg(26))
    assert svc.forget('a4') is True
    assert svc.get('a4') == {'state': 'unknown'}
    assert svc.forget('a4') is False


class SizedMsg(FakeMsg):
    def __init__(self, src_id, size):
        super().__init__(src_id)
        self.data = b'x' * size


def test_a_target_cannot_park_unbounded_results(svc, router):
    """Pushes for ids nobody issued (30 x 20 MiB from one target, 100 small
    ones from another) are parked only up to the per-target caps."""
    from ansible_svc.mux import jobs
    big = [svc.push('big%d' % i, RESULT, SizedMsg(21, 20 * 1024 * 1024)) for i in range(30)]
    assert big.count(True) == jobs.MAX_PARKED_BYTES_PER_TARGET // (20 * 1024 * 1024)
    small = [svc.push('small%d' % i, RESULT, SizedMsg(22, 100)) for i in range(100)]
    assert small.count(True) == jobs.MAX_PARKED_PER_TARGET
    assert svc.refused == big.count(False) + small.count(False)
    # Another target's job is not affected, and a parked result still meets
    # its listener.
    sender = FakeSender()
    assert svc.push('legit', RESULT, SizedMsg(23, 100)) is True
    svc.listen('legit', sender, ctx(router, 23))
    assert sender.sent == [RESULT]


def test_many_targets_cannot_park_unbounded_results(svc, router, monkeypatch):
    """Each under its own cap, many targets together still meet the total."""
    from ansible_svc.mux import jobs
    monkeypatch.setattr(jobs, 'MAX_PARKED_BYTES', 3 * 1024 * 1024)
    pushed = [svc.push('t%d' % target, RESULT, SizedMsg(100 + target, 1024 * 1024)) for target in range(5)]
    assert pushed == [True, True, True, False, False]


def test_parked_results_expire(svc, router, monkeypatch):
    from ansible_svc.mux import jobs
    assert svc.push('early', RESULT, SizedMsg(31, 10)) is True
    for i in range(70):  # expiry runs once the table is not tiny
        svc.issue('filler%d' % i, ctx(router, 32))
    later = time.monotonic() + jobs.PARK_TTL + 1
    monkeypatch.setattr(jobs.time, 'monotonic', lambda: later)
    svc.issue('one-more', ctx(router, 32))
    assert svc.get('early') == {'state': 'unknown'}
    assert svc.get('filler0') == {'state': 'pending', 'owner_id': 32}
