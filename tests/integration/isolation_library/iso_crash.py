#!/usr/bin/python
# Test module for tests/integration/test_isolation.py: end the module process
# in ways that are not AnsibleModule.exit_json/fail_json.
from __future__ import annotations

DOCUMENTATION = r"""
module: iso_crash
short_description: Crash, exit oddly or hang (ansible-svc isolation tests)
options:
  mode:
    description: How to end.
    type: str
    required: true
    choices: [exit3, segv, sysexit_text, sysexit_none, sysexit_list, sysexit_256, hang, hang_nohup]
  marker:
    description: >-
      For mode=hang, a unique word: the module renames itself (/proc/self/comm) to
      its first 15 characters and starts C(sh -c 'sleep 3600; echo MARKER') before
      it sleeps, so that the test can find every process of the task.
      mode=hang_nohup does the same with SIGHUP and SIGTERM ignored (inherited
      by the shell and its sleep).
    type: str
"""

import os
import signal
import subprocess
import sys
import time

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(
        mode=dict(type='str', required=True,
                  choices=['exit3', 'segv', 'sysexit_text', 'sysexit_none', 'sysexit_list', 'sysexit_256',
                           'hang', 'hang_nohup']),
        marker=dict(type='str'),
    ))
    mode = module.params['mode']
    if mode == 'exit3':
        print('{"partial": ', end='')
        sys.stdout.flush()
        os._exit(3)
    if mode == 'segv':
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)
        module.fail_json(msg='SIGSEGV did not kill the module')
    if mode == 'sysexit_text':
        raise SystemExit('svc-iso: exiting with a text argument')
    if mode == 'sysexit_none':
        raise SystemExit(None)
    if mode == 'sysexit_list':
        raise SystemExit([1, 2])
    if mode == 'sysexit_256':
        raise SystemExit(256)
    if mode in ('hang', 'hang_nohup'):
        if mode == 'hang_nohup':
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        marker = module.params['marker']
        with open('/proc/self/comm', 'w') as fp:
            fp.write(marker[:15])
        subprocess.Popen(['/bin/sh', '-c', 'sleep 3600; echo %s' % marker],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3600)
        module.exit_json(changed=False, msg='woke up')


if __name__ == '__main__':
    main()
