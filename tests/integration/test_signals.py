"""Signals to the controller end the run promptly and leave nothing behind
(issue 12), in each phase a run spends its time in: a sync task (a module,
or ``raw``), an async task with ``poll: N``, and an ``async_status`` polling
loop.

Ctrl-C is SIGINT to the whole foreground process group, as a terminal sends
it; SIGKILL goes to ``ansible-playbook`` alone (its workers, in sessions of
their own, are orphaned and must notice). Afterwards no worker, mux,
interpreter, module child or mux directory of the run may be left; an async job lives on,
as under vanilla (it is detached by design), and is all that is left.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from helpers import (connection_only, inventory_for, mux_dirs, prepare_playbook, processes, read_results, svc_processes,
                     wait_while_running)

pytestmark = pytest.mark.newest_core_only

PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ping:
    - name: become
      command: id -un
      become: true
      when: inventory_hostname == 'target'
    - name: sync
      command: sleep {{ sleep_for }}
      when: phase == 'sync'
    - name: raw
      raw: sleep {{ sleep_for }}
      when: phase == 'raw'
    - name: async poll
      command: sleep {{ sleep_for }}
      async: 120
      poll: 1
      when: phase == 'async_poll'
    - name: async start
      command: sleep {{ sleep_for }}
      async: 120
      poll: 0
      register: job
      when: phase == 'async_status'
    - name: async status
      async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 200
      delay: 1
      when: phase == 'async_status'
    - name: never reached
      command: id -un
"""

#: How long the controller may take to exit after Ctrl-C. The issue asks
#: for "a second or two"; the bound leaves room for a loaded CI machine,
#: and the closing note reports the times seen.
CTRL_C_BOUND = 5.0

#: How long anything of the run may outlive a SIGKILL of the controller.
LEFTOVER_BOUND = 5.0


def _fmt(procs):
    return '\n'.join(f'  {pid} {user}: {cmd[:200]}' for pid, (user, cmd) in sorted(procs.items()))


def _job_of(pid):
    """`pid` and those of its ancestors that are ansible-svc processes (the
    job's supervisor; never sshd or anything of the test's own)."""
    ours = svc_processes()
    chain = {pid}
    while pid > 1:
        if pid in ours:
            chain.add(pid)
        try:
            with open(f'/proc/{pid}/stat') as fp:
                pid = int(fp.read().rsplit(')', 1)[1].split()[1])
        except OSError:
            break
    return chain


@pytest.mark.parametrize('how', ['sigint', 'sigkill'])
@pytest.mark.parametrize('phase', ['sync', 'raw', 'async_poll', 'async_status'])
@pytest.mark.parametrize('mode', ['svc_linear', 'connection'])
def test_a_signal_ends_the_run_and_leaves_nothing(ssh_env, sshd_alive, tmp_path, run_tmpdir, mode, phase, how):
    """`mode`: the strategy starts the mux (lifeline), or (connection-only
    mode, stock linear) the first worker does (the mux watches the pid)."""
    before = svc_processes()
    # A sleep length unique to this case, to recognise its task processes.
    case = (['sync', 'raw', 'async_poll', 'async_status'].index(phase) * 2 + (how == 'sigkill')) * 2 + (mode == 'connection')
    sleep_for = '90.%d' % (os.getpid() % 1000 * 100 + case)
    inventory, strategy = inventory_for(ssh_env), 'svc_linear'
    if mode == 'connection':
        inventory, strategy = connection_only(inventory), 'linear'
    cmd, env, results_file = prepare_playbook(PB, tmp_path=tmp_path, inventory=inventory, strategy=strategy,
                                              extra_vars={'sleep_for': sleep_for, 'phase': phase},
                                              env={'TMPDIR': str(run_tmpdir)})
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def sleeps():
        return {pid for pid, (user, c) in processes().items() if c == f'sleep {sleep_for}'}

    def in_phase():
        users = {user for user, c in processes().values() if c == f'sleep {sleep_for}'}
        if not {'svc-login', 'root'} <= users:
            return False
        if phase != 'async_status':
            return True
        # Both jobs started: the run is in its async_status loop.
        return len([r for r in read_results(results_file)[0] if r['task'] == 'async start']) == 2

    try:
        wait_while_running(proc, in_phase, f'the {phase} phase')
        if how == 'sigint':
            os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C in a terminal does
        else:
            os.kill(proc.pid, signal.SIGKILL)    # only ansible-playbook itself
        signalled = time.monotonic()
        try:
            proc.wait(CTRL_C_BOUND)
        except subprocess.TimeoutExpired:
            stuck = {p: v for p, v in processes().items() if str(tmp_path) in v[1]}
            stuck.update({p: v for p, v in svc_processes().items() if p not in before})
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f'ansible-playbook did not exit within {CTRL_C_BOUND}s of {how}; its output:\n'
                        f'{proc.communicate()[0]}\nprocesses of the run then:\n{_fmt(stuck)}')
        print(f'{phase} {how}: exited {time.monotonic() - signalled:.2f}s after the signal')
        # A sync task's processes go; an async job is detached and stays.
        deadline = signalled + LEFTOVER_BOUND
        while True:
            job = set().union(set(), *(_job_of(pid) for pid in sleeps())) if phase.startswith('async') else set()
            left = {p: v for p, v in svc_processes().items() if p not in before and p not in job}
            # Ansible's workers (forks of ansible-playbook, whose argv names
            # this test's files) must go too, orphaned or not.
            left.update({p: v for p, v in processes().items() if str(tmp_path) in v[1]})
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not left, f'left {time.monotonic() - signalled:.1f}s after {how}:\n' + _fmt(left)
        if not phase.startswith('async'):
            assert not sleeps(), f'the {phase} task still runs'
        else:
            assert len(sleeps()) == 2, 'the async jobs did not survive the run, as under vanilla'
        while mux_dirs(run_tmpdir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not mux_dirs(run_tmpdir), f'mux directory left after {how}'
        results, _ = read_results(results_file)
        assert not [r for r in results if r['task'] == 'never reached']
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        # Ansible's workers run in sessions of their own: after a SIGKILL of
        # ansible-playbook they are orphans that only this cleanup ends; and
        # the async jobs, which outlive any run.
        doomed = {p for p, (_, c) in processes().items() if str(tmp_path) in c}
        doomed |= set().union(set(), *(_job_of(pid) for pid in sleeps()))
        doomed |= {p for p in svc_processes() if p not in before}
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
