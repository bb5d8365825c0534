#!/usr/bin/python
# Test module of the svc_test_modules role: echoes its argument through a
# role-local module_utils file.
from __future__ import annotations

DOCUMENTATION = r"""
module: svc_echo
short_description: Echo a message through role-local module_utils (test module)
options:
  msg:
    description: Text to echo.
    type: str
    required: true
  fail:
    description: Fail with the shouted message instead.
    type: bool
    default: false
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.svc_test_util import shout


def main():
    module = AnsibleModule(
        argument_spec=dict(msg=dict(type='str', required=True), fail=dict(type='bool', default=False)),
        supports_check_mode=True,
    )
    shouted = shout(module.params['msg'])
    if module.params['fail']:
        module.fail_json(msg=shouted, rc=5)
    module.exit_json(changed=False, shouted=shouted, uid=os.getuid(),
                     check_mode=module.check_mode)


if __name__ == '__main__':
    main()
