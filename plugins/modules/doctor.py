#!/usr/bin/python
# Copyright: ansible-svc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the ``doctor`` action (it has no module code of its
own: the action plugin does all the work on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: doctor
short_description: Show how ansible-svc reaches each host
description:
  - Reports, per host, whether ansible-svc serves it and why or why not, the chain of logins that reaches
    it, the Python interpreter a task runs in, the round trip of one call to that interpreter, and what
    the run's mux holds. Run it when something is slow or odd, as an ad-hoc command
    (C(ansible all -m ansible_svc.accel.doctor)) or as a task.
  - C(served) is true when the host's tasks run through ansible-svc's persistent interpreters, that is
    when its connection is C(svc_ssh), C(svc_local), C(svc_podman), C(svc_docker) or C(svc_chroot), set for
    the host or chosen by a C(svc_*) strategy, and E(ANSIBLE_SVC_DISABLE) is not set. C(reason) says which
    way in applied, or why the host runs vanilla and what to change.
  - On a served host the doctor connects as the task would (same account, same C(become) settings), asks
    the interpreter for its path and version, times O(round_trips) no-op calls to it and reports their
    median, and asks the mux for its cached interpreters (every one counts; those of this host and its
    bastions are listed), its module files, file grants and jobs.
  - On a host that is not served, with a POSIX shell, it runs the host's Python once with a shell command
    to report its path and version, and times O(round_trips) shell commands C(true), each run as vanilla
    Ansible runs commands on that connection.
  - Nothing it returns comes from a password or a key; ssh arguments are not shown.
  - If the host cannot be reached (or its interpreter not started), the task fails with the chain and the
    error in C(msg), instead of only marking the host unreachable.
version_added: 0.1.0
author: ansible-svc contributors (@ansible-svc)
options:
  round_trips:
    description: How many calls (shell commands on a host that is not served) to time; between 1 and 100.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    description: Changes nothing, so it runs the same in check mode.
notes:
  - Runs on the controller as an action plugin; there is no module code to send.
  - The interpreter reported is the one a module would run in when the host sets C(ansible_python_interpreter)
    or discovery has already run in this play; otherwise it is the host's default interpreter (C(python3)),
    the one that runs shell commands.
  - C(msg) is a list of lines, so that the default callback prints one fact per line.
  - C(docs/doctor.md) in the ansible-svc sources explains each line, with example output.
"""

EXAMPLES = r"""
# ansible all -m ansible_svc.accel.doctor
# ansible webservers -b -m ansible_svc.accel.doctor -a round_trips=20

- name: How is each host reached?
  ansible_svc.accel.doctor:

- name: The become interpreter, timed over 20 calls
  ansible_svc.accel.doctor:
    round_trips: 20
  become: true
  register: doctor

- name: Fail when a host is not accelerated
  ansible.builtin.assert:
    that: doctor.served
    fail_msg: "{{ doctor.reason }}"
"""

RETURN = r"""
served:
  description: Whether ansible-svc serves the host.
  returned: always
  type: bool
  sample: true
mode:
  description:
    - V(strategy) (a C(svc_*) strategy serves the host), V(connection) (an C(svc_*) connection is set for it),
      V(off) (E(ANSIBLE_SVC_DISABLE) is set) or V(vanilla) (the host's connection is not served).
  returned: always
  type: str
  sample: strategy
reason:
  description: Why the host is served or not, and what to change when it is not.
  returned: always
  type: str
  sample: strategy svc_linear serves connection ssh with svc_ssh
strategy:
  description: The play's strategy.
  returned: always
  type: str
  sample: svc_linear
connection:
  description: The connection the host asked for (C(requested)) and the plugin that runs it (C(plugin)).
  returned: always
  type: dict
  sample: {"requested": "ssh", "plugin": "svc_ssh"}
chain:
  description: The logins that reach the host, first first (bastions, the host or container, become).
  returned: always
  type: list
  elements: str
  sample: ["ssh svc-login@127.0.0.1:2222", "sudo as svc-target"]
python:
  description: The interpreter a task runs in; C(executable) and C(version), and on a served host also
    C(implementation), C(pid) and C(uid).
  returned: when the interpreter could be asked
  type: dict
  sample: {"executable": "/usr/bin/python3", "version": "3.13.5", "implementation": "CPython", "pid": 4242, "uid": 1001}
python_error:
  description: Why the interpreter of a host that is not served could not be reported.
  returned: when that probe was not possible or failed
  type: str
round_trip_ms:
  description: Median round trip of the timed calls, in milliseconds.
  returned: when the host could be asked
  type: float
  sample: 0.41
round_trip_of:
  description: What was timed.
  returned: when the host could be asked
  type: str
  sample: 5 no-op calls to the interpreter
mux:
  description:
    - What the run's mux holds, on a served host. C(pid); C(interpreters) with C(count) (all cached
      interpreters) and C(listed) (those of this host and its bastions, each with its C(transport), C(host),
      C(port), C(user), C(via), C(become) method and user, C(python), C(version), C(pid), C(started_as),
      the interpreter strings it was C(requested) as, and C(refs), the references workers hold);
      C(files) (C(cached) module files and their C(cached_bytes), file C(grants) not used yet);
      C(jobs) (C(running), results C(held) for a reader, C(parked), C(delivered), C(refused)).
  returned: on a served host that could be reached
  type: dict
msg:
  description: The report as readable lines.
  returned: always
  type: list
  elements: str
error:
  description: Why the host could not be asked (the task then fails).
  returned: on failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """Reached only when the action plugin was not found: the work is done on the controller."""
    module = AnsibleModule(argument_spec=dict(
        round_trips=dict(type="int", default=5),
    ), supports_check_mode=True)
    module.fail_json(msg="doctor runs on the controller: its action plugin was not found")


if __name__ == "__main__":
    main()
