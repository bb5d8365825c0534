#!/usr/bin/python
# -*- coding: utf-8 -*-
# Test module for tests/integration/test_module_kinds.py: a new-style
# (AnsibleModule) Python module. Reports its arguments and a few facts about
# the interpreter that ran it, so a test can tell which interpreter (and
# interpreter flags) the module really ran under.
from __future__ import annotations

DOCUMENTATION = r"""
module: svc_kind_new
short_description: ansible-svc test module (new-style Python)
options:
  msg:
    type: str
    default: hello
  num:
    type: int
    default: 0
  fail:
    type: bool
    default: false
"""

import locale
import os
import sys

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            msg=dict(type='str', default='hello'),
            num=dict(type='int', default=0),
            fail=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(
        changed=False,
        kind='new',
        msg=p['msg'],
        num=p['num'],
        doubled=p['num'] * 2,
        shouted=p['msg'].upper(),
        python_version=list(sys.version_info[:2]),
        python_real=os.path.realpath(sys.executable),
        ignore_environment=sys.flags.ignore_environment,
        utf8_mode=sys.flags.utf8_mode,
        # What UTF-8 mode changes in practice.
        encodings=dict(
            filesystem=sys.getfilesystemencoding(),
            preferred=locale.getpreferredencoding(False).lower().replace('-', ''),
            stdout=[sys.stdout.encoding.lower().replace('-', ''), sys.stdout.errors],
            lc_ctype=os.environ.get('LC_CTYPE'),
        ),
        uid=os.getuid(),
    )
    if p['fail']:
        module.fail_json(msg='failing on request: %s' % p['msg'], **{k: v for k, v in result.items() if k != 'msg'})
    module.exit_json(**result)


if __name__ == '__main__':
    main()
