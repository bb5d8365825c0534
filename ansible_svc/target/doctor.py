"""What ``ansible_svc.accel.doctor`` asks of a target interpreter.

Runs in target interpreters (called by workers through the mux router).
Global state: none.

Two calls: :func:`about`, once, for the interpreter's facts, and
:func:`ping`, a few times, whose round trips the doctor reports (the cost of
one call to the target, without any work done there).
"""

# !mitogen: minify_safe

import os
import platform
import sys


def about():
    """The interpreter's path, version and account."""
    return {
        "python": sys.executable,
        "prefix": sys.prefix,
        "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
        "implementation": platform.python_implementation(),
        "uid": os.getuid(),
        "pid": os.getpid(),
    }


def ping():
    """Nothing: the doctor times the round trip."""
    return None
