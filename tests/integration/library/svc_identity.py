#!/usr/bin/python
# -*- coding: utf-8 -*-
# Test module for the identity tests (tests/integration/test_identity*.py):
# reports who and where the module really ran as, so a test can compare
# ansible-svc with vanilla Ansible task by task.
from __future__ import annotations

DOCUMENTATION = r"""
module: svc_identity
short_description: ansible-svc test module reporting the identity a task ran with
options:
  env_names:
    description: Environment variables to report.
    type: list
    elements: str
    default: []
"""

import grp
import os
import pwd
import sys

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(env_names=dict(type='list', elements='str', default=[])),
                           supports_check_mode=True)
    uid = os.geteuid()
    module.exit_json(
        changed=False,
        user=pwd.getpwuid(uid).pw_name,
        uid=uid,
        gid=os.getegid(),
        groups=sorted(grp.getgrgid(g).gr_name for g in os.getgroups()),
        executable=sys.executable,
        prefix=sys.prefix,
        cwd=os.getcwd(),
        home=os.path.expanduser('~'),
        env={name: os.environ.get(name) for name in module.params['env_names']},
    )


if __name__ == '__main__':
    main()
