"""Bastion chains in the mux's ConnectionService (svc_via): hop order, one
interpreter per hop shared by every host behind it, and a failing hop making
the host unreachable, never a candidate for the direct no-Python fallback.
Logins are local interpreters standing in for ssh ones: no sshd."""
from __future__ import annotations

import sys

import mitogen.core
import pytest

from ansible_svc.mux.connections import ConnectionService


@pytest.fixture
def service(router, monkeypatch):
    service = ConnectionService(router)
    service.started = []

    def start(spec, python, via=None):
        service.started.append((spec['user'], spec['host'], via, spec['password']))
        if spec['host'].startswith('down'):
            raise mitogen.core.StreamError('python3: not found')
        return router.local(python_path=[sys.executable], connect_timeout=30)

    monkeypatch.setattr(service, '_start_login', start)
    return service


def spec(host, via):
    return {'transport': 'ssh', 'host': host, 'port': 22, 'user': 'app', 'password': 'secret', 'python': None,
            'via': [{'host': h, 'port': 22, 'user': 'ops'} for h in via]}


def test_hops_start_in_order_and_are_shared(service):
    first = service._login(spec('t1', ['outer', 'inner']))
    second = service._login(spec('t2', ['outer', 'inner']))
    outer, inner = service.started[0], service.started[1]
    assert [s[:2] for s in service.started] == [('ops', 'outer'), ('ops', 'inner'), ('app', 't1'), ('app', 't2')]
    assert outer[2] is None  # the first hop from the mux
    assert service.started[2][2] is service.started[3][2]  # both hosts behind the same inner hop
    assert service.started[2][2] is not None and inner[2] is not None
    assert first.context is not second.context
    assert [s[3] for s in service.started] == [None, None, 'secret', 'secret']  # hops never get the password


def test_a_host_reached_directly_and_through_a_bastion_are_two_logins(service):
    direct = service._login(spec('t1', []))
    behind = service._login(spec('t1', ['outer']))
    assert direct.context is not behind.context


def test_a_failing_hop_makes_the_host_unreachable(service):
    answer = service.get(spec('t1', ['down-bastion']))
    assert answer['error']['kind'] == 'unreachable', answer  # not "nopython": no going around the bastion
    assert 'bastion ops@down-bastion:22' in answer['error']['msg']
    assert [s[1] for s in service.started] == ['down-bastion']


def test_no_python_behind_a_bastion_is_unreachable_not_the_direct_fallback(service):
    answer = service.get(spec('down-target', ['outer']))
    assert answer['error']['kind'] == 'unreachable', answer
    assert service.get(spec('down-target', []))['error']['kind'] == 'nopython'
