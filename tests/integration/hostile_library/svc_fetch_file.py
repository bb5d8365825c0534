#!/usr/bin/python
# Test module for tests/integration/test_hostile.py: a hostile target asking
# the mux's FileService for a controller file (run inline, so it holds its
# interpreter's router), and reporting what it got.
from __future__ import annotations

DOCUMENTATION = r"""
module: svc_fetch_file
short_description: ansible-svc test module fetching a controller file through the mux
options:
  path:
    description: Controller path to ask for.
    type: str
    required: true
"""

import gc
import io

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(path=dict(type='str', required=True)))
    import mitogen.core
    import mitogen.service
    router = [o for o in gc.get_objects() if isinstance(o, mitogen.core.Router)][0]
    out = io.BytesIO()
    try:
        ok, _ = mitogen.service.FileService.get(mitogen.core.Context(router, mitogen.parent_id),
                                                module.params['path'], out)
        error = None
    except Exception as exc:
        ok, error = False, str(exc)
    module.exit_json(changed=False, ok=bool(ok), size=len(out.getvalue()), error=error)


if __name__ == '__main__':
    main()
