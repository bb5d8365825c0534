#!/usr/bin/python
# Copyright: ansible-svc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the ``mitogen_async_status`` action (it has no module
code of its own: the action plugin does all the work on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mitogen_async_status
short_description: Status of an async task, answered by the ansible-svc mux
description:
  - Reports the status of a job started with C(async), or removes its job file, like
    M(ansible.builtin.async_status), and returns the same fields.
  - On hosts served by ansible-svc (C(svc_ssh), C(svc_local)) the answer comes from the mux of the
    running C(ansible-playbook). A job started in this run is known there as soon as it ends,
    without a round trip to the target. Identical status requests that arrive together (many hosts or
    loop items polling the same job) run one lookup and share its answer, and finished answers are
    kept until O(mode=cleanup), so repeated polls of a finished job cost nothing.
  - When the mux does not know the job (it was started by an earlier C(ansible-playbook) run, or the
    target interpreter that started it has gone), the job file on the target is read, so no result is
    ever lost.
  - On hosts served by any other connection plugin it behaves exactly like M(ansible.builtin.async_status).
  - Run it with the same C(become) settings as the async task, as for M(ansible.builtin.async_status).
    The job file lives in the C(async_dir) of the user the job ran as.
version_added: 0.1.0
author: ansible-svc contributors (@ansible-svc)
options:
  jid:
    description: Job or task identifier, the C(ansible_job_id) of the async task's result.
    type: str
    required: true
  mode:
    description:
      - If V(status), obtain the status.
      - If V(cleanup), remove the job file and forget the job.
    type: str
    choices: [cleanup, status]
    default: status
notes:
  - The job file directory is the shell option C(async_dir) (variable C(ansible_async_dir),
    default C(~/.ansible_async)), as for M(ansible.builtin.async_status).
seealso:
  - module: ansible.builtin.async_status
"""

EXAMPLES = r"""
- name: Start a long job without waiting
  ansible.builtin.command: /usr/local/bin/reindex
  async: 3600
  poll: 0
  register: reindex

- name: Wait for it
  mitogen_async_status:
    jid: "{{ reindex.ansible_job_id }}"
  register: job
  until: job.finished
  retries: 360
  delay: 10

- name: Remove its job file
  mitogen_async_status:
    jid: "{{ reindex.ansible_job_id }}"
    mode: cleanup
"""

RETURN = r"""
ansible_job_id:
  description: The async job id.
  returned: success
  type: str
finished:
  description: Whether the job has finished.
  returned: always
  type: bool
started:
  description: Whether the job has started.
  returned: always
  type: bool
results_file:
  description: Path of the job file on the target.
  returned: when O(mode=status)
  type: str
erased:
  description: Path of the job file that was removed.
  returned: when O(mode=cleanup)
  type: str
stdout:
  description: The job's stdout, when it has finished and its module returned one.
  returned: always
  type: str
stderr:
  description: The job's stderr, when it has finished and its module returned one.
  returned: always
  type: str
ansible_svc:
  description:
    - Where the answer came from, on hosts served by ansible-svc.
    - C(source) is V(service) (the mux knew the job) or V(job_file) (read on the target).
    - C(lookup) numbers the lookup that produced the answer; requests that shared one lookup
      (deduplicated, or a cached final answer) carry the same number.
  returned: on hosts served by ansible-svc, when O(mode=status)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """Reached only when the action plugin was not found: the work is done on the controller."""
    module = AnsibleModule(argument_spec=dict(
        jid=dict(type="str", required=True),
        mode=dict(type="str", choices=["cleanup", "status"], default="status"),
    ))
    module.fail_json(msg="mitogen_async_status runs on the controller: its action plugin was not found")


if __name__ == "__main__":
    main()
