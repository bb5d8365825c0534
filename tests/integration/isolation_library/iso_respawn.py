#!/usr/bin/python
# Test module for tests/integration/test_isolation.py: a module that
# re-executes itself under another interpreter with respawn_module.
from __future__ import annotations

DOCUMENTATION = r"""
module: iso_respawn
short_description: Respawn under another interpreter (ansible-svc isolation tests)
options:
  mode:
    description: >-
      plain (no respawn), respawn (once, to I(interpreter)), twice (respawn, then
      try again from the respawned process), delete_modlib (remove this module's
      own module_utils zip when the process exits, as a module cleaning up its
      temp files might; in vanilla the wrapper has removed it by then).
    type: str
    required: true
    choices: [plain, respawn, twice, delete_modlib]
  interpreter:
    type: str
    default: /usr/bin/python3
  data:
    description: Echoed back, to show the arguments survived the respawn.
    type: str
    default: ''
"""

import atexit
import os
import sys
import zipfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.respawn import has_respawned, respawn_module


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def main():
    module = AnsibleModule(argument_spec=dict(
        mode=dict(type='str', required=True, choices=['plain', 'respawn', 'twice', 'delete_modlib']),
        interpreter=dict(type='str', default='/usr/bin/python3'),
        data=dict(type='str', default=''),
    ))
    mode = module.params['mode']
    main_mod = sys.modules['__main__']
    modlib = getattr(main_mod, '_modlib_path', None)
    if mode == 'delete_modlib':
        # Not before exit_json: vanilla's module itself still imports from it.
        atexit.register(_remove_quietly, modlib)
        module.exit_json(changed=True, removal_scheduled=True)
    if mode in ('respawn', 'twice') and not has_respawned():
        respawn_module(module.params['interpreter'])
    if mode == 'twice':
        respawn_module(module.params['interpreter'])  # must raise: already respawned
    respawned = has_respawned()
    extra = {}
    if respawned:
        # The process that respawned us (under svc_linear too a plain child).
        with open('/proc/%d/comm' % os.getppid()) as fp:
            extra['parent_comm'] = fp.read().strip()
    argv0 = sys.argv[0] if sys.argv else None
    module.exit_json(
        changed=False,
        respawned=respawned,
        executable=sys.executable,
        # The zip's path is a temp name: report argv relative to it.
        argv0_in_modlib=argv0[len(modlib):] if modlib and argv0 and argv0.startswith(modlib) else argv0,
        argv_len=len(sys.argv),
        main_name=main_mod.__name__,
        module_fqn=getattr(main_mod, '_module_fqn', None),
        modlib_is_zip=bool(modlib) and zipfile.is_zipfile(modlib),
        modlib_first_on_path=bool(sys.path) and sys.path[0] == modlib,
        data=module.params['data'],
        uid=os.getuid(),
        **extra
    )


if __name__ == '__main__':
    main()
