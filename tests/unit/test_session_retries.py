"""reconnection_retries: more attempts to start the interpreter while the
host is unreachable, with vanilla's pauses, and none after other failures."""
import pytest

from ansible_svc.controller import session as sessions


class _Mux(object):
    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = 0

    def __call__(self, method, timeout=None, **kwargs):
        assert method == 'get'
        self.calls += 1
        return self.replies.pop(0)


def _session(monkeypatch, replies, retries):
    pauses = []
    monkeypatch.setattr(sessions.time, 'sleep', pauses.append)
    s = sessions.Session({'host': 'h', 'timeout': 1, 'retries': retries, 'become': None})
    mux = _Mux(replies)
    monkeypatch.setattr(s, '_call_mux', mux)
    return s, mux, pauses


UNREACHABLE = {'error': {'kind': 'unreachable', 'msg': 'Connection refused'}}
AUTH = {'error': {'kind': 'auth', 'msg': 'Permission denied'}}


def test_unreachable_is_tried_again_with_vanillas_pauses(monkeypatch):
    s, mux, pauses = _session(monkeypatch, [UNREACHABLE] * 4, retries=3)
    with pytest.raises(sessions.TargetUnreachable, match='refused'):
        s.context(False)
    assert mux.calls == 4 and pauses == [0, 1, 3]


def test_a_later_attempt_that_reaches_the_host_is_used(monkeypatch):
    monkeypatch.setattr(sessions, '_lost_with_the_mux', lambda ctx, mux: None)
    monkeypatch.setattr(sessions.mux_client, 'attach', lambda: type('A', (), {'mux': None})())
    ctx = type('Context', (), {'name': 'ssh.h'})()
    s, mux, pauses = _session(monkeypatch, [UNREACHABLE, {'context': ctx}], retries=2)
    assert s.context(False) is ctx and mux.calls == 2 and pauses == [0]


def test_an_authentication_failure_is_never_tried_again(monkeypatch):
    s, mux, pauses = _session(monkeypatch, [AUTH], retries=5)
    with pytest.raises(sessions.AuthenticationFailed):
        s.context(False)
    assert mux.calls == 1 and pauses == []


def test_no_retries_by_default(monkeypatch):
    s, mux, pauses = _session(monkeypatch, [UNREACHABLE], retries=0)
    with pytest.raises(sessions.TargetUnreachable):
        s.context(False)
    assert mux.calls == 1
