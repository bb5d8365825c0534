# Test-only callback: records every task result as one JSON line so the
# integration tests can assert on structured results instead of parsing the
# human-readable stdout. ansible-core 2.19 ships no JSON callback of its own.
from __future__ import annotations

DOCUMENTATION = """
    name: svc_results
    type: aggregate
    short_description: Write task results as JSON lines for the ansible-svc tests
    description:
        - Appends one JSON object per task result (and one for the final stats)
          to the file named by the C(SVC_RESULTS_FILE) environment variable.
        - Does nothing when C(SVC_RESULTS_FILE) is unset.
    requirements:
        - enable in configuration (C(ANSIBLE_CALLBACKS_ENABLED=svc_results))
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'svc_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get('SVC_RESULTS_FILE')
        self._play = None

    def _write(self, record):
        if not self._path:
            return
        # Open per record: a crashed or killed run still leaves every result
        # it got so far, which is what a failing test wants to show.
        with open(self._path, 'a', encoding='utf-8') as f:
            f.write(json.dumps(record, default=str, sort_keys=True) + '\n')

    def _record(self, result, status, **extra):
        # result.host / .task / .result are the public 2.19 API.
        task = result.task
        res = dict(result.result)
        if status == 'ok' and res.get('changed'):
            status = 'changed'
        self._write(dict(
            event='task',
            time=time.time(),
            play=self._play,
            host=result.host.get_name(),
            task=task.get_name(),
            action=task.action,
            status=status,
            result=res,
            **extra
        ))

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed', ignore_errors=ignore_errors)

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_playbook_on_stats(self, stats):
        self._write(dict(
            event='stats',
            time=time.time(),
            stats={h: stats.summarize(h) for h in sorted(stats.processed)},
        ))
