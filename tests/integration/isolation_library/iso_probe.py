#!/usr/bin/python
# Test module for tests/integration/test_isolation.py: report the process
# state a module starts with, as seen from inside a new-style module.
from __future__ import annotations

DOCUMENTATION = r"""
module: iso_probe
short_description: Report the state a module process starts with (ansible-svc isolation tests)
options:
  marker_dir:
    description: Directory where iso_mutate leaves its marker files.
    type: str
    required: true
"""

import os
import re
import signal
import sys
import threading
import warnings

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text import converters

SIGNALS = ('SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGCHLD', 'SIGALRM')


def describe_handler(handler):
    if handler == signal.SIG_DFL:
        return 'SIG_DFL'
    if handler == signal.SIG_IGN:
        return 'SIG_IGN'
    if handler is None:
        return 'None'
    if handler is signal.default_int_handler:
        return 'default_int_handler'
    return 'handler:%s.%s' % (getattr(handler, '__module__', '?'), getattr(handler, '__qualname__', repr(handler)))


def proc_status():
    fields = {}
    with open('/proc/self/status') as fp:
        for line in fp:
            key, _, value = line.partition(':')
            fields[key] = value.strip()
    return fields


def signal_names(mask_hex):
    """Names of the signals set in a /proc/<pid>/status signal mask."""
    mask = int(mask_hex, 16)
    names = []
    for num in range(1, 65):
        # 32 .. SIGRTMIN-1 belong to the C library's thread machinery (glibc
        # installs its own handlers there in threaded processes); programs
        # cannot use them, and their disposition is not the module's state.
        if 32 <= num < signal.SIGRTMIN:
            continue
        if mask & (1 << (num - 1)):
            try:
                names.append(signal.Signals(num).name)
            except ValueError:
                names.append('SIG%d' % num)
    return names


def open_fds():
    """{fd: normalized target} of this process's open descriptors."""
    found = {}
    for name in os.listdir('/proc/self/fd'):
        try:
            target = os.readlink('/proc/self/fd/%s' % name)
        except OSError:
            continue  # the descriptor listdir used, closed by now
        target = re.sub(r'^(pipe|socket):\[\d+\]$', r'\1', target)
        target = re.sub(r'^anon_inode:\[?([a-z_]+)\]?$', r'anon_inode:\1', target)
        found[int(name)] = target
    return found


def describe_filter(f):
    action, message, category, module, lineno = f
    return [action, getattr(message, 'pattern', message), getattr(category, '__name__', repr(category)),
            getattr(module, 'pattern', module), lineno]


def count_lines(path):
    try:
        with open(path) as fp:
            return len(fp.read().splitlines())
    except OSError:
        return None


def main():
    module = AnsibleModule(argument_spec=dict(marker_dir=dict(type='str', required=True)), supports_check_mode=True)
    marker_dir = module.params['marker_dir']
    status = proc_status()
    fds = open_fds()
    module.exit_json(
        changed=False,
        basic_attr=hasattr(basic, 'SVC_ISO_POLLUTED'),
        converters_patched=bool(getattr(converters.to_text, '_svc_iso_patched', False)),
        fake_module_in_sys_modules='svc_iso_fake_module' in sys.modules,
        fake_path_in_sys_path='/svc-iso-fake-path' in sys.path,
        cwd=os.getcwd(),
        env_leak=os.environ.get('SVC_ISO_LEAK'),
        umask=status.get('Umask'),
        signal_handlers={name: describe_handler(signal.getsignal(getattr(signal, name))) for name in SIGNALS},
        signals_blocked=signal_names(status.get('SigBlk', '0')),
        signals_ignored=signal_names(status.get('SigIgn', '0')),
        open_fd_count=len(fds),
        extra_fds=sorted(target for fd, target in fds.items() if fd > 2),
        threads=sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()),
        warnings_filters=[describe_filter(f) for f in warnings.filters],
        atexit_marker_lines=count_lines(os.path.join(marker_dir, 'atexit')),
        thread_marker_exists=os.path.exists(os.path.join(marker_dir, 'thread-done')),
    )


if __name__ == '__main__':
    main()
