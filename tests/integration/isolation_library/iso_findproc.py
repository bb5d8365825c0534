#!/usr/bin/python
# Test module for tests/integration/test_isolation.py: list the processes of
# a task that should be gone (marker in the command line or in comm, and
# their descendants), waiting up to `wait` seconds for them to go.
from __future__ import annotations

DOCUMENTATION = r"""
module: iso_findproc
short_description: Find processes carrying a marker (ansible-svc isolation tests)
options:
  marker:
    description: The marker given to iso_crash mode=hang.
    type: str
    required: true
  wait:
    description: Seconds to wait for them to disappear.
    type: float
    default: 0
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule


def find(marker):
    me = os.getpid()
    procs = {}
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open('/proc/%s/stat' % name) as fp:
                stat = fp.read()
            with open('/proc/%s/cmdline' % name, 'rb') as fp:
                cmdline = fp.read().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        fields = stat[stat.rindex(')') + 2:].split()
        if fields[0] in 'ZX':
            continue
        procs[int(name)] = dict(ppid=int(fields[1]), comm=comm, cmdline=cmdline)
    hits = {pid for pid, p in procs.items() if marker in p['cmdline'] or p['comm'] == marker[:15]}
    grown = True
    while grown:
        children = {pid for pid, p in procs.items() if p['ppid'] in hits} - hits
        grown = bool(children)
        hits |= children
    return [dict(pid=pid, **procs[pid]) for pid in sorted(hits)]


def main():
    module = AnsibleModule(argument_spec=dict(marker=dict(type='str', required=True),
                                              wait=dict(type='float', default=0)))
    deadline = time.monotonic() + module.params['wait']
    while True:
        found = find(module.params['marker'])
        if not found or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    module.exit_json(changed=False, processes=found)


if __name__ == '__main__':
    main()
