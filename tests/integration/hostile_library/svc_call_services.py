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
    default: []
  flood:
    description: Push this many results, for job ids never issued, ...
    type: int
    default: 0
  flood_size:
    description: ... of this many bytes each.
    type: int
    default: 1048576
"""

import gc

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(calls=dict(type='list', elements='raw', default=[]),
                                              flood=dict(type='int', default=0),
                                              flood_size=dict(type='int', default=1048576)))
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
    flooded = {'accepted': 0, 'refused': 0}
    blob = 'x' * module.params['flood_size']
    for n in range(module.params['flood']):
        answer = mux.call_service_async('ansible_svc.mux.jobs.JobResultService', 'push', job_id='flood-%d' % n,
                                        result={'stdout': blob}).get(timeout=30).unpickle()
        flooded['accepted' if answer else 'refused'] += 1
    module.exit_json(changed=False, answers=answers, flooded=flooded)


if __name__ == '__main__':
    main()
