#!/usr/bin/python
# Test module for tests/integration/test_hostile.py: plays a hostile target.
# As the attacker (run inline, so it holds the target interpreter's mitogen
# router), it leaves a thread behind that sprays forged task results at every
# likely worker context and handle; as the victim it just answers, a little
# later, with its real text.
from __future__ import annotations

DOCUMENTATION = r"""
module: svc_hostile
short_description: ansible-svc test module playing a hostile target
options:
  role:
    description: V(attacker) or V(victim).
    type: str
    required: true
  seconds:
    description: How long the victim waits, or the attacker sprays.
    type: float
    default: 3.0
  report:
    description: File where the attacker writes how many messages it sent (its own reply may be spoilt).
    type: str
"""

import gc
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule


def spray(seconds, report):
    import mitogen.core
    routers = [o for o in gc.get_objects() if isinstance(o, mitogen.core.Router)]
    forged = {'rc': 0, 'stdout': json.dumps({'changed': False, 'said': 'FORGED-BY-ATTACKER-TARGET'}).encode(),
              'stderr': b''}
    sent = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        for router in routers:
            for context_id in range(1, 64):
                for handle in range(1000, 1080):
                    router.route(mitogen.core.Message.pickled(forged, dst_id=context_id, handle=handle))
                    sent += 1
                # As it goes: its own worker may take a forgery and cancel it.
                with open(report + '.tmp', 'w') as fp:
                    json.dump({'routers': len(routers), 'sent': sent}, fp)
                os.rename(report + '.tmp', report)
        time.sleep(0.05)
    return len(routers), sent


def main():
    module = AnsibleModule(argument_spec=dict(role=dict(type='str', required=True),
                                              seconds=dict(type='float', default=3.0),
                                              report=dict(type='str')))
    if module.params['role'] == 'victim':
        time.sleep(module.params['seconds'])
        module.exit_json(changed=False, said='REAL')
    # Spray from a thread left in the interpreter (inline runs leave it
    # there), after this task's own result is back: the attacker's worker
    # is then gone, and every worker still waiting is another host's.
    import threading
    threading.Thread(target=lambda: (time.sleep(0.5), spray(module.params['seconds'] + 1, module.params['report'])),
                     daemon=True).start()
    module.exit_json(changed=False)


if __name__ == '__main__':
    main()
