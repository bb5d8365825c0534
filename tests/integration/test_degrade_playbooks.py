"""Graceful degradation, end to end: real ansible-playbook runs of
svc_linear on a faked ansible-core (tests/integration/strategy_plugins/
svc_test_fakecore.py). A newer core prints one warning per run and still
runs every task through ansible-svc; a poll hook whose signature check fails
steps aside, and async tasks are polled as vanilla does, without failing."""
from __future__ import annotations

import os
import re
from pathlib import Path

from helpers import REPO, inventory_for, run_playbook

STRATEGY_PLUGINS = os.pathsep.join([str(REPO / 'plugins' / 'strategy'), str(Path(__file__).parent / 'strategy_plugins')])

PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: parent
      shell: "grep -c mitogen /proc/$PPID/cmdline || true"
    - name: poll
      command: echo polled
      async: 20
      poll: 1
- hosts: all
  gather_facts: false
  tasks:
    - name: second play
      command: echo again
"""


def _run(tmp_path, ssh_env, fake):
    return run_playbook(PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env), strategy='svc_test_fakecore',
                        env={'ANSIBLE_STRATEGY_PLUGINS': STRATEGY_PLUGINS, 'SVC_TEST_FAKE': fake},
                        args=['-vvv']).assert_ok()


def _warnings(run, text):
    return re.findall(r'\[WARNING\]: ansible-svc: [^\n]*' + re.escape(text), run.stdout + run.stderr)


def test_a_newer_core_warns_once_per_run_and_keeps_the_speed_up(tmp_path, ssh_env, sshd_alive):
    r = _run(tmp_path, ssh_env, 'version=2.99.0')
    assert len(_warnings(r, 'is newer than the newest core ansible-svc is tested with')) == 1, r.output
    assert '2.99.0 is newer' in r.stdout + r.stderr
    for host in ('target', 'local'):
        assert r.task('parent', host)['result']['stdout'] == '1'  # run by our interpreter
        assert r.task('poll', host)['result']['stdout'] == 'polled'
        assert r.task('second play', host)['result']['stdout'] == 'again'
    # the poll hook still took the pushed result
    assert 'no result pushed' not in r.stdout


def test_a_changed_poll_signature_falls_back_to_vanillas_poll(tmp_path, ssh_env, sshd_alive):
    r = _run(tmp_path, ssh_env, 'poll-signature')
    found = _warnings(r, 'async tasks with poll > 0 are polled as vanilla does')
    assert len(found) == 1 and 'future_option' in found[0], r.output
    assert not _warnings(r, 'is newer than')
    for host in ('target', 'local'):
        assert r.task('parent', host)['result']['stdout'] == '1'  # everything else stays ours
        assert r.task('poll', host)['status'] == 'changed' and r.task('poll', host)['result']['stdout'] == 'polled'
