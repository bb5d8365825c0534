#!/usr/bin/python
# Test module for tests/integration/test_hostile.py: a hostile target asking
# the controller's mux for Python modules through its interpreter's mitogen
# importer (run inline, so it holds that importer), and reporting what came.
from __future__ import annotations

DOCUMENTATION = r"""
module: svc_fetch_controller
short_description: ansible-svc test module asking the controller for modules
options:
  names:
    description: Module names to ask for.
    type: list
    elements: str
    required: true
"""

import gc
import threading
import zlib

from ansible.module_utils.basic import AnsibleModule


def fetch(importer, name):
    """The source the mux sent for `name`, or None when it refused."""
    importer._cache.pop(name, None)
    arrived = threading.Event()
    importer._request_module(name, arrived.set)
    if not arrived.wait(10):
        return None
    source = importer._cache[name][3]
    return zlib.decompress(source).decode('utf-8', 'replace') if source else None


def main():
    module = AnsibleModule(argument_spec=dict(names=dict(type='list', elements='str', required=True)))
    import mitogen.core
    importers = [o for o in gc.get_objects() if isinstance(o, mitogen.core.Importer)]
    module.exit_json(changed=False, importers=len(importers),
                     sources={name: fetch(importers[0], name) for name in module.params['names']})


if __name__ == '__main__':
    main()
