#!/usr/bin/python
# Test module for tests/integration/test_hostile.py: a hostile target calling
# the mux's services (run inline, so it holds its interpreter's router), and
# reporting each answer.
from __future__ import annotations

DOCUMENTATION = r"""
module: svc_call_services
short_description: ansible-svc test module calling the mux's services from a target
options:
  calls:
    description: "[service, method, kwargs] triples."
    type: list
    elements: raw
    required: true
"""

import gc

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(calls=dict(type='list', elements='raw', required=True)))
    import mitogen.core
    router = [o for o in gc.get_objects() if isinstance(o, mitogen.core.Router)][0]
    mux = mitogen.core.Context(router, mitogen.parent_id)
    answers = []
    for service, method, kwargs in module.params['calls']:
        try:
            answer = mux.call_service_async(service, method, **kwargs).get(timeout=10).unpickle()
            answers.append({'accepted': True, 'answer': repr(answer)[:200]})
        except Exception as exc:
            answers.append({'accepted': False, 'error': '%s: %s' % (type(exc).__name__, exc)})
    module.exit_json(changed=False, answers=answers)


if __name__ == '__main__':
    main()
