# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Counts the 1-second stalls of Ansible's own ``run_command`` in a run.

Part of the benchmark suite, enabled in every mode alike. ansible-core's
``AnsibleModule.run_command`` polls the command twice after its output
ends; when the command exits between the two polls, it waits one more
second in ``select()`` on no file descriptors. The benchmark's commands
take milliseconds, so a command result whose ``delta`` is between 1.0 and
1.5 s is that stall. Printed at the end of the run for bench.runner.
"""
from __future__ import annotations

DOCUMENTATION = """
name: bench_stalls
type: aggregate
short_description: count ansible-core run_command 1 s stalls (ansible-svc benchmark)
description:
  - Prints C(BENCH run_command stalls N) after the play recap; used by the ansible-svc benchmark only.
requirements:
  - enable in configuration
"""

from ansible.plugins.callback import CallbackBase

MARKER = 'BENCH run_command stalls'
STALL_RANGE = (1.0, 1.5)


def delta_seconds(delta) -> float | None:
    """Seconds of a command result's ``delta`` ('H:MM:SS.ffffff'), or None."""
    try:
        hours, minutes, seconds = str(delta).split(':')
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (TypeError, ValueError):
        return None


def is_stall(result: dict) -> bool:
    seconds = delta_seconds(result.get('delta'))
    return seconds is not None and STALL_RANGE[0] <= seconds < STALL_RANGE[1]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_stalls'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stalls = 0

    def _count(self, result):
        data = result._result
        self.stalls += sum(is_stall(item) for item in data.get('results') or [] if isinstance(item, dict))
        self.stalls += is_stall(data)

    v2_runner_on_ok = v2_runner_on_failed = _count

    def v2_playbook_on_stats(self, stats):
        self._display.display('%s %d' % (MARKER, self.stalls))
