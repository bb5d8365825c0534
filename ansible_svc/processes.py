"""Which process is which: a pid together with its start time.

Runs in the controller, its workers and the mux. Global state: none.

A pid alone may be reused once its process is gone; the pair names one
process for as long as the machine runs. Where ``/proc`` is missing (not
Linux) the start time is empty and only the pid is compared.
"""

from __future__ import annotations

import os


def start_time(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot), "" where unknown, or None
    when there is no such process (or it is a zombie)."""
    if not os.path.exists("/proc/self/stat"):
        return "" if _exists(pid) else None
    try:
        with open("/proc/%d/stat" % pid) as fp:
            fields = fp.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def alive(pid: int, start: str) -> bool:
    """Whether the process `pid` that started at `start` still runs."""
    now = start_time(pid)
    return now is not None and (now == start or not start)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
