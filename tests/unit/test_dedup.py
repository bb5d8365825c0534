"""FinalAnswerInvoker: identical concurrent requests run once; only final
answers are cached. Real threads, a real router, fake messages."""
from __future__ import annotations

import threading

import mitogen.core
import mitogen.service
import pytest

from ansible_svc.mux.dedup import FinalAnswerInvoker, deduplicate


class FakeMsg:
    def __init__(self):
        self.replies = []
        self.src_id = 0
        self.auth_id = 0

    def reply(self, value):
        self.replies.append(value)


class SlowService(mitogen.service.Service):
    invoker_class = FinalAnswerInvoker

    def __init__(self, router):
        super().__init__(router)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.state = 'running'
        self.calls = 0

    def is_final(self, method_name, answer):
        return answer['state'] == 'finished'

    @mitogen.service.expose(policy=mitogen.service.AllowAny())
    @deduplicate
    def status(self, job_id, run):
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(5)
        return {'state': self.state, 'job_id': job_id, 'lookup': run}

    @mitogen.service.expose(policy=mitogen.service.AllowAny())
    def plain(self, value):
        self.calls += 1
        return value


@pytest.fixture
def service(router):
    return SlowService(router)


@pytest.fixture
def invoker(service):
    return FinalAnswerInvoker(service)


def ask(invoker, job_id):
    msg = FakeMsg()
    invoker.invoke('status', {'job_id': job_id}, msg)
    return msg


def test_concurrent_identical_requests_run_once(service, invoker):
    first = threading.Thread(target=ask, args=(invoker, 'j1'))
    first.start()
    assert service.entered.wait(5)
    # While the first lookup runs, identical requests are parked without a
    # thread: invoke returns at once.
    waiters = [ask(invoker, 'j1') for _ in range(5)]
    assert all(m.replies == [] for m in waiters)
    other = threading.Thread(target=ask, args=(invoker, 'j2'))
    service.gate.set()
    first.join(5)
    other.start()
    other.join(5)
    assert [len(m.replies) for m in waiters] == [1] * 5
    assert {m.replies[0]['lookup'] for m in waiters} == {1}
    assert service.calls == 2  # j1 once, j2 once
    assert invoker.requests['status'] == 7 and invoker.runs['status'] == 2


def test_running_answers_are_not_cached(service, invoker):
    service.gate.set()
    assert ask(invoker, 'j1').replies[0]['state'] == 'running'
    assert ask(invoker, 'j1').replies[0]['lookup'] == 2
    assert service.calls == 2


def test_final_answers_are_cached_until_forgotten(service, invoker):
    service.gate.set()
    service.state = 'finished'
    first = ask(invoker, 'j1').replies[0]
    assert ask(invoker, 'j1').replies[0] == first
    assert service.calls == 1
    invoker.forget(job_id='j2')
    assert ask(invoker, 'j1').replies[0] == first
    invoker.forget(job_id='j1')
    assert ask(invoker, 'j1').replies[0]['lookup'] == 2


def test_errors_reach_every_waiter_and_are_not_cached(service, invoker):
    service.gate.set()
    def broken(job_id, run):
        raise ValueError('boom')
    broken.ansible_svc_deduplicate = True
    broken.mitogen_service__policies = service.status.mitogen_service__policies
    service.status = broken
    msg = ask(invoker, 'j1')
    assert isinstance(msg.replies[0], mitogen.core.CallError)
    assert 'boom' in str(msg.replies[0])
    assert invoker.runs['status'] == 1
    ask(invoker, 'j1')
    assert invoker.runs['status'] == 2


def test_undecorated_methods_are_not_deduplicated(service, invoker):
    msg = FakeMsg()
    invoker.invoke('plain', {'value': 3}, msg)
    invoker.invoke('plain', {'value': 3}, msg)
    assert msg.replies == [3, 3] and service.calls == 2
