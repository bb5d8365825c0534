"""no_log values never appear in anything a run produces (issue 12)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import inventory_for, run_playbook

NO_LOG_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: secret argument
      command: echo NOLOG-ARG-{{ marker }}
      no_log: true
    - name: secret async result
      shell: echo NOLOG-ASYNC-{{ marker }}
      async: 10
      poll: 1
      no_log: true
    - name: secret async started
      shell: echo NOLOG-POLL0-{{ marker }}
      async: 10
      poll: 0
      register: job
      no_log: true
    - name: secret async status
      async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 40
      delay: 0.25
      no_log: true
"""


@pytest.mark.parametrize('verbosity', ['-v', '-vvvvv'])
def test_no_log_values_appear_nowhere(tmp_path, sshd_alive, ssh_env, verbosity):
    """Output, Ansible's log file, the mux's and the targets' forwarded logs
    (on stderr), every file the run leaves in its directories and in the
    target account's home: no byte of a no_log argument or result. (The
    async job files in ~/.ansible_async hold results, as vanilla's do:
    async_status reads them.)"""
    marker = 'M%d' % os.getpid()
    run = run_playbook(NO_LOG_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env), args=[verbosity],
                       extra_vars={'marker': marker},
                       env={'ANSIBLE_LOG_PATH': str(tmp_path / 'ansible.log')}).assert_ok()
    assert len(run.stdout) > 1000
    assert (tmp_path / 'ansible.log').stat().st_size > 1000
    for stream in (run.stdout, run.stderr):
        assert marker not in stream.replace(f"'marker': '{marker}'", ''), [
            line for line in stream.splitlines() if marker in line][:5]
    home = Path('/home') / 'svc-login'
    for path in [*Path(tmp_path).rglob('*'), *(p for p in home.rglob('*') if '.ansible_async' not in p.parts)]:
        if path.is_file() and path.name != 'extra_vars.json':
            assert marker.encode() not in path.read_bytes(), path
