"""Unknown cores degrade gracefully: a newer core warns once per run, an
older one is refused, and a hook whose contract check fails steps aside to
vanilla behaviour (tested with a faked version and faked signatures)."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleError
from ansible.executor.task_executor import TaskExecutor
from ansible.plugins.action import ActionBase

from ansible_svc.controller import ansiballz, async_poll, compat


@pytest.fixture
def warnings(monkeypatch):
    """The warnings compat shows, with verdicts and warnings forgotten before
    and after the test."""
    shown = []
    compat.reset()
    monkeypatch.setattr(compat.display, 'warning', lambda msg, *a, **k: shown.append(msg))
    yield shown
    compat.reset()


def test_series():
    assert compat.series('2.21.5') == (2, 21)
    assert compat.series('2.22.0.dev0') == (2, 22)
    assert compat.series('2.19.0rc1') == (2, 19)
    with pytest.raises(ValueError):
        compat.series('devel')


def test_each_supported_core_has_its_named_adapter():
    assert type(compat.adapter_for('2.19.14')) is compat.Core219
    assert type(compat.adapter_for('2.20.10')) is compat.Core220
    assert type(compat.adapter_for('2.21.5')) is compat.Core221


def test_a_newer_core_warns_once_per_run_and_uses_the_newest_adapter(monkeypatch, warnings):
    monkeypatch.setattr(compat, 'core_version', lambda: '2.99.1')
    assert type(compat.adapter()) is compat.Core221
    for _ in range(3):  # the strategy calls this once per play
        compat.check_version()
    assert len(warnings) == 1
    assert '2.99.1 is newer than the newest core ansible-svc is tested with (2.21)' in warnings[0]


def test_a_tested_core_does_not_warn(warnings):
    compat.check_version()
    assert warnings == []


def test_an_older_core_is_refused(monkeypatch):
    monkeypatch.setattr(compat, 'core_version', lambda: '2.18.6')
    with pytest.raises(AnsibleError, match='needs ansible-core 2.19 or newer; this is ansible-core 2.18.6'):
        compat.check_version()


def test_a_faked_poll_signature_leaves_vanillas_poll_in_place(monkeypatch, warnings):
    def _poll_async_result(self, result, templar, task_vars=None, new_argument=None):
        return 'vanilla'

    monkeypatch.setattr(TaskExecutor, '_poll_async_result', _poll_async_result)
    assert async_poll.install() is False
    assert TaskExecutor._poll_async_result is _poll_async_result
    assert compat.contract_ok('poll') is False
    assert len(warnings) == 1 and 'async tasks with poll > 0 are polled as vanilla does' in warnings[0]
    assert 'new_argument' in warnings[0]


def test_the_real_poll_signature_installs_the_hook(monkeypatch, warnings):
    monkeypatch.setattr(TaskExecutor, '_poll_async_result', TaskExecutor._poll_async_result)
    async_poll.uninstall()
    original = TaskExecutor._poll_async_result
    assert async_poll.install() is True
    assert TaskExecutor._poll_async_result.ansible_svc_original is original
    assert async_poll.install() is True  # once only
    assert TaskExecutor._poll_async_result.ansible_svc_original is original
    async_poll.uninstall()
    assert TaskExecutor._poll_async_result is original and warnings == []


def test_a_faked_result_parser_signature_turns_mitogen_async_status_into_the_builtin(monkeypatch, warnings):
    from ansible.plugins.action.async_status import ActionModule as Builtin
    from ansible_svc.controller import action_async_status

    def _parse_returned_data(self, res, profile, strict):
        raise AssertionError('not called')

    monkeypatch.setattr(ActionBase, '_parse_returned_data', _parse_returned_data)
    assert compat.contract_ok('results') is False
    assert compat.contract_ok('poll') is False  # the poll hook shapes results too
    assert 'mitogen_async_status runs the builtin async_status' in warnings[0]

    ran = []
    monkeypatch.setattr(Builtin, 'run', lambda self, tmp=None, task_vars=None: ran.append('builtin') or {'builtin': True})
    action = object.__new__(action_async_status.ActionModule)
    action._connection = _svc_connection()
    assert action.run(task_vars={}) == {'builtin': True} and ran == ['builtin']


def _svc_connection():
    from ansible_svc.controller.plugin_connection import SvcConnectionBase

    fake = type('FakeSvc', (SvcConnectionBase,), {'transport': 'fake_svc'})
    fake.__abstractmethods__ = frozenset()
    return object.__new__(fake)


def test_a_faked_ansiballz_layout_runs_the_wrapper_as_vanilla(monkeypatch, warnings):
    from ansible._internal._ansiballz import _wrapper

    def _ansiballz_main(zip_data, ansible_module, module_fqn, params, profile, date_time, extensions,
                        rlimit_nofile, new_setting):
        pass

    monkeypatch.setattr(_wrapper, '_ansiballz_main', _ansiballz_main)
    data = b'#!/usr/bin/python3\n_ANSIBALLZ_WRAPPER = True\n'
    assert ansiballz.is_wrapper(data) is False
    assert len(warnings) == 1 and "modules run as vanilla's AnsiballZ wrapper" in warnings[0]


def test_a_check_that_raises_counts_as_failed(monkeypatch, warnings):
    def broken(core):
        raise RuntimeError('boom')

    monkeypatch.setitem(compat.CHECKS, 'async_wrapper', broken)
    assert compat.contract_ok('async_wrapper') is False
    assert 'RuntimeError: boom' in warnings[0]
