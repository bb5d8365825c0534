"""Which ssh -o options a user's ssh args set (mux/connections.py)."""
from __future__ import annotations

import pytest

from ansible_svc.mux.connections import ssh_options_set


@pytest.mark.parametrize('args', [
    ['-o', 'ServerAliveInterval=5'],
    ['-oServerAliveInterval=5'],
    ['-C', '-o', 'serveralivecountmax 2'],
    ['-o', 'ServerAliveInterval', '-x'],
])
def test_set(args):
    assert ssh_options_set(args, 'serveraliveinterval', 'serveralivecountmax')


@pytest.mark.parametrize('args', [None, [], ['-C', '-o', 'ControlMaster=auto'], ['ServerAliveInterval=5'],
                                  ['-o', 'ServerAliveIntervalX=5'], ['-o']])
def test_not_set(args):
    assert not ssh_options_set(args, 'serveraliveinterval', 'serveralivecountmax')
