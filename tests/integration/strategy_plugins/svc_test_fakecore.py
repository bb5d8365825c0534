# Test-only strategy plugin: svc_linear on a faked ansible-core, for
# tests/integration/test_compat_degrade.py. $SVC_TEST_FAKE says what to fake:
#   version=X.Y.Z   the running core's version, as ansible-svc reads it
#   poll-signature  a TaskExecutor._poll_async_result with another signature
# (it still calls the real one, as a future core's might).
from __future__ import annotations

import os

DOCUMENTATION = """
name: svc_test_fakecore
short_description: svc_linear on a faked ansible-core (ansible-svc tests)
description:
  - svc_linear, after faking what $SVC_TEST_FAKE says.
author: ansible-svc contributors
"""

from ansible.executor.task_executor import TaskExecutor

from ansible_svc.controller import compat

import importlib.util

_spec = importlib.util.spec_from_file_location(
    'svc_linear_for_tests', os.path.join(os.path.dirname(__file__), '..', '..', '..', 'plugins', 'strategy', 'svc_linear.py'))
_svc_linear = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_svc_linear)

FAKE = os.environ.get('SVC_TEST_FAKE', '')

if FAKE.startswith('version='):
    _version = FAKE.split('=', 1)[1]
    compat.core_version = lambda: _version
elif FAKE == 'poll-signature' and not hasattr(TaskExecutor._poll_async_result, 'svc_test_fake'):
    _real = TaskExecutor._poll_async_result

    def _poll_async_result(self, *args, future_option=False, **kwargs):
        return _real(self, *args, **kwargs)

    _poll_async_result.svc_test_fake = True
    TaskExecutor._poll_async_result = _poll_async_result


class StrategyModule(_svc_linear.StrategyModule):
    pass
