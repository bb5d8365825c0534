"""Modules run through our interpreters on every target Python the running
ansible-core supports, with vanilla's results; on a Python the core dropped
(3.8 from 2.20), the task is refused with vanilla's message.

The target Pythons are pyenv's (~/.pyenv/versions/X.Y.*/bin/python3, or
$SVC_TARGET_PYTHONS_DIR). /root is mode 700, so the ssh test users cannot run
them: the targets here are `local` hosts, one per Python, all in one play (the
ssh tests use the system Python). A missing interpreter fails the test, naming
it: the matrix must not shrink silently.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

import pytest

from helpers import assert_same_results, run_playbook

from ansible_svc.controller import compat

TARGET_PYTHONS = ('3.8', '3.9', '3.10', '3.11', '3.12', '3.13')

#: Oldest target Python of each core (its module_utils/basic.py _PY_MIN;
#: the 2.20 and 2.21 porting guides: Python 3.8 dropped on targets).
OLDEST_TARGET = {(2, 19): (3, 8), (2, 20): (3, 9), (2, 21): (3, 9)}

PYTHONS_DIR = Path(os.environ.get('SVC_TARGET_PYTHONS_DIR') or Path.home() / '.pyenv' / 'versions')
LIBRARY = Path(__file__).resolve().parent / 'library'

#: Differ between two runs by construction (job ids), or exist only in ours
#: (mitogen_async_status says where its answer came from), or count retries.
DROP = frozenset({'ansible_job_id', 'results_file', 'erased', 'ansible_svc', 'attempts'})

PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: module
      svc_kind_new:
        msg: héllo
    - name: command
      command: echo hi
    - name: copy
      copy:
        content: "x {{ inventory_hostname }}\\n"
        dest: "{{ work }}/{{ inventory_hostname }}.txt"
    - name: stat
      stat:
        path: "{{ work }}/{{ inventory_hostname }}.txt"
        get_checksum: true
    - name: async poll
      command: echo polled
      async: 30
      poll: 1
    - name: async start
      command: echo detached
      async: 30
      poll: 0
      register: job
    - name: async status
      mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 120
      delay: 0.5
"""


def target_python(version: str) -> str:
    found = sorted(glob.glob(str(PYTHONS_DIR / f'{version}.*' / 'bin' / 'python3')))
    if not found:
        pytest.fail(f'target Python {version} not found: no {PYTHONS_DIR}/{version}.*/bin/python3 '
                    f'(install it with pyenv, or point SVC_TARGET_PYTHONS_DIR at the versions)', pytrace=False)
    return found[-1]


def host(version: str) -> str:
    return 'py' + version.replace('.', '')


def test_every_target_python_of_this_core(tmp_path):
    core = compat.series(compat.core_version())
    assert core in OLDEST_TARGET, f'no target Python table for ansible-core {compat.core_version()}'
    pythons = {v: target_python(v) for v in TARGET_PYTHONS}
    inventory = '\n'.join(['[all]'] + [f'{host(v)} ansible_connection=local ansible_python_interpreter={p}'
                                       for v, p in pythons.items()]) + '\n'
    work = tmp_path / 'work'
    runs = {}
    for strategy in ('linear', 'svc_linear'):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        runs[strategy] = run_playbook(PB, tmp_path=tmp_path / strategy, strategy=strategy, inventory=inventory,
                                      extra_vars={'work': str(work)}, env={'ANSIBLE_LIBRARY': str(LIBRARY)},
                                      args=['-vvv', '-f', '6'] if strategy == 'svc_linear' else ['-f', '6'])
    svc = runs['svc_linear']
    assert_same_results(runs['linear'], svc, drop=DROP)
    for version, python in pythons.items():
        name = host(version)
        module = svc.task('module', name)
        if tuple(map(int, version.split('.'))) >= OLDEST_TARGET[core]:
            assert module['status'] == 'ok', (version, module)
            assert module['result']['python_version'] == list(map(int, version.split('.')))
            assert module['result']['python_real'] == os.path.realpath(python)
            assert svc.task('async status', name)['result']['finished'] is True
            # it ran through our interpreter (-vvv says "EXEC module"), not a fallback
            assert re.search(rf'^<localhost> EXEC module svc_kind_new \({re.escape(python)}\)', svc.stdout, re.M), (version, svc.output)
        else:
            assert module['status'] == 'failed', (version, module)
            oldest = '.'.join(map(str, OLDEST_TARGET[core]))
            assert f'Python {oldest} or newer on the target' in module['result']['msg'], module
            assert not svc.tasks('command', name)
    assert svc.stats and all(s.get('unreachable', 0) == 0 for s in svc.stats.values()), svc.stats
