#!/usr/bin/python
# Test module for tests/integration/test_isolation.py: change every piece of
# process state it can reach, and report what it did. Nothing of it may be
# seen by the next task (vanilla runs every task in a fresh process).
from __future__ import annotations

DOCUMENTATION = r"""
module: iso_mutate
short_description: Pollute the module process's state (ansible-svc isolation tests)
options:
  marker_dir:
    description: Directory (created if missing) for the atexit and thread marker files.
    type: str
    required: true
  thread_sleep:
    description: Seconds the left-behind non-daemon thread sleeps before it writes its marker.
    type: float
    default: 2.0
"""

import atexit
import os
import signal
import sys
import threading
import time
import types
import warnings

import ansible.module_utils.basic as basic
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text import converters


def _append(path, text):
    with open(path, 'a') as fp:
        fp.write(text + '\n')


def main():
    module = AnsibleModule(argument_spec=dict(marker_dir=dict(type='str', required=True),
                                              thread_sleep=dict(type='float', default=2.0)))
    marker_dir = module.params['marker_dir']
    os.makedirs(marker_dir, exist_ok=True)
    did = {}

    # Globals and monkey-patches of module_utils.
    basic.SVC_ISO_POLLUTED = 'yes'
    did['basic_attr'] = hasattr(basic, 'SVC_ISO_POLLUTED')
    original_to_text = converters.to_text

    def patched_to_text(*args, **kwargs):
        return original_to_text(*args, **kwargs)

    patched_to_text._svc_iso_patched = True
    converters.to_text = patched_to_text
    did['converters_patched'] = getattr(converters.to_text, '_svc_iso_patched', False)
    sys.modules['svc_iso_fake_module'] = types.ModuleType('svc_iso_fake_module')
    did['fake_module_in_sys_modules'] = 'svc_iso_fake_module' in sys.modules
    sys.path.insert(0, '/svc-iso-fake-path')
    did['fake_path_in_sys_path'] = sys.path[0] == '/svc-iso-fake-path'

    # Process state.
    os.chdir('/')
    did['cwd'] = os.getcwd()
    os.environ['SVC_ISO_LEAK'] = 'leaked'
    did['env_leak'] = os.environ.get('SVC_ISO_LEAK')
    os.umask(0o077)
    did['umask'] = oct(os.umask(0o077))
    signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    did['sigusr1_is_handler'] = callable(signal.getsignal(signal.SIGUSR1))
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    did['sigusr2'] = 'SIG_IGN' if signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN else 'other'
    atexit.register(_append, os.path.join(marker_dir, 'atexit'), 'atexit ran')
    did['atexit_registered'] = True

    def sleeper():
        time.sleep(module.params['thread_sleep'])
        _append(os.path.join(marker_dir, 'thread-done'), 'thread finished')

    thread = threading.Thread(target=sleeper, name='svc-iso-sleeper', daemon=False)
    thread.start()
    did['thread_alive'] = thread.is_alive()
    fd = os.open('/dev/null', os.O_RDONLY)
    os.set_inheritable(fd, True)
    did['fd_left_open'] = fd > 2
    warnings.simplefilter('error')
    warnings.filterwarnings('ignore', message='svc-iso-marker')
    did['warnings_first_filter'] = [warnings.filters[0][0], warnings.filters[0][1].pattern]

    module.exit_json(changed=True, did=did)


if __name__ == '__main__':
    main()
