"""Helper threads that leave signals to the main thread.

Runs in workers. Global state: none.

The kernel gives a process's signal to any thread that does not block it,
and Python runs its handler only when the main thread next runs Python code.
A helper thread that takes SIGINT or SIGTERM while the main thread sleeps in
a long wait (a worker waiting for its task) delays the handler for as long
as that wait lasts. Threads started inside :func:`signals_blocked` inherit a
mask that leaves those signals to the main thread. Never for threads that
start processes: those would inherit the mask too.
"""

import contextlib
import signal

#: What Ansible's workers end on.
ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_blocked(signums=ENDING_SIGNALS):
    """Block `signums` in this thread for the duration, so that threads
    started meanwhile never take them."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
