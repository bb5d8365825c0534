"""A hostile target cannot touch the controller or other hosts (issue 12).

Each test plays one attack from a target and asserts that it is refused
and that the other hosts' results are their own.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import inventory_for, run_playbook

# Hostile targets against the mux: no ansible-core code takes part (see conftest.py).
pytestmark = pytest.mark.newest_core_only

LIBRARY = Path(__file__).resolve().parent / 'hostile_library'

FORGERY_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: attack and wait
      svc_hostile:
        role: "{{ 'attacker' if inventory_hostname == 'evil' else 'victim' }}"
        report: "{{ report }}"
"""


def test_a_target_cannot_forge_another_hosts_result(tmp_path, sshd_alive, ssh_env):
    """The attacker runs inline (it holds its interpreter's router) and, from
    a thread it leaves behind, sends forged results to every likely worker
    context and handle while the victim's worker waits for its own."""
    line = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    inventory = (f'evil {line} svc_task_isolation=inline\n'
                 f"victim {line.replace('ansible_user=svc-login', 'ansible_user=root')}\n")
    report = Path(tempfile.mkdtemp(prefix='svc-hostile-', dir='/tmp'))
    os.chmod(report, 0o777)
    try:
        run = run_playbook(FORGERY_PB, tmp_path=tmp_path, inventory=inventory,
                           extra_vars={'report': str(report / 'attack.json')},
                           env={'ANSIBLE_LIBRARY': str(LIBRARY), 'ANSIBLE_FORKS': '5'}).assert_ok()
        attack = json.loads((report / 'attack.json').read_text())
        assert run.task('attack and wait', 'evil')['status'] == 'ok'

    finally:
        shutil.rmtree(report)
    assert run.task('attack and wait', 'victim')['status'] == 'ok'
    assert run.task('attack and wait', 'victim')['result']['said'] == 'REAL'
    assert attack['routers'] >= 1 and attack['sent'] > 1000, attack
    _assert_refused_by_the_mux(run)


def _assert_refused_by_the_mux(run):
    """The mux's router refused the forgeries: none reached a worker,
    whose receivers would have dropped (and logged) them as a second line."""
    assert 'refused to route a message from context' in run.stderr, run.stderr[-3000:]
    assert 'dropped a message from context' not in run.stderr, run.stderr[-3000:]


USERCUSTOMIZE_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: wait while the planted code sprays
      svc_hostile:
        role: victim
        seconds: 6
      # The attacker owns its host and may spoil its own results.
      ignore_errors: "{{ inventory_hostname == 'evil' }}"
"""

USERCUSTOMIZE = '''
import threading

{spray}


def _attack():
    import sys, time
    deadline = time.time() + 60
    while time.time() < deadline:
        core = sys.modules.get('mitogen.core')
        if core is not None and any(isinstance(o, core.Router) for o in gc.get_objects()):
            spray(8.0, {report!r})
            return
        time.sleep(0.1)


threading.Thread(target=_attack, daemon=True).start()
'''


def test_a_planted_usercustomize_cannot_forge_results(tmp_path, sshd_alive, ssh_env):
    """The hostile login account plants a usercustomize.py: every Python it
    starts (the target interpreter included, default fork isolation) sprays
    forged results from a thread. Every host still gets its own result."""
    spec = importlib.util.spec_from_file_location('svc_hostile', LIBRARY / 'svc_hostile.py')
    hostile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hostile)
    report = Path(tempfile.mkdtemp(prefix='svc-hostile-', dir='/tmp'))
    os.chmod(report, 0o777)
    site = subprocess.run(['sudo', '-u', 'svc-login', ssh_env.get('python', '/usr/bin/python3'), '-c',
                           'import site; print(site.getusersitepackages())'],
                          check=True, capture_output=True, text=True).stdout.strip()
    planted = Path(site) / 'usercustomize.py'
    assert not planted.exists(), planted
    source = 'import gc, json, os, time\n' + USERCUSTOMIZE.format(spray=inspect.getsource(hostile.spray),
                                                                    report=str(report / 'attack.json'))
    subprocess.run(['sudo', '-u', 'svc-login', 'sh', '-c', f'mkdir -p "{site}" && cat > "{planted}"'],
                   input=source, text=True, check=True)
    line = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    inventory = (f'evil {line}\n'
                 f"victim {line.replace('ansible_user=svc-login', 'ansible_user=root')}\n")
    try:
        run = run_playbook(USERCUSTOMIZE_PB, tmp_path=tmp_path, inventory=inventory,
                           env={'ANSIBLE_LIBRARY': str(LIBRARY), 'ANSIBLE_FORKS': '5'}).assert_ok()
        attack = json.loads((report / 'attack.json').read_text())
    finally:
        planted.unlink(missing_ok=True)
        shutil.rmtree(report)
    assert run.task('wait while the planted code sprays', 'victim')['result']['said'] == 'REAL'
    assert attack['routers'] >= 1 and attack['sent'] > 1000, attack
    _assert_refused_by_the_mux(run)


FETCH_PB = """
- hosts: evil
  gather_facts: false
  tasks:
    - name: ask the mux for modules
      svc_fetch_controller:
        names: [mitogen.doas, svc_planted_secret, ansible.release, yaml, ansible_svc.mux.connections]
"""


def test_a_target_gets_only_our_target_code_from_the_controller(tmp_path, sshd_alive, ssh_env):
    """The mux serves targets our target code and mitogen only: not a module
    beside the playbook (its directory is not on the mux's path), not
    Ansible, not our controller code, not any other package."""
    (tmp_path / 'svc_planted_secret.py').write_text('SECRET = "planted-secret-4711"\n')
    line = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    run = run_playbook(FETCH_PB, tmp_path=tmp_path, inventory=f'evil {line} svc_task_isolation=inline\n',
                       env={'ANSIBLE_LIBRARY': str(LIBRARY)}).assert_ok()
    result = run.task('ask the mux for modules', 'evil')['result']
    assert result['importers'] >= 1
    sources = result['sources']
    assert 'class PasswordError' in (sources['mitogen.doas'] or ''), sources  # the way in works
    assert sources['svc_planted_secret'] is None
    assert sources['ansible.release'] is None
    assert sources['yaml'] is None
    assert sources['ansible_svc.mux.connections'] is None


FILE_PB = """
- hosts: victim
  gather_facts: false
  tasks:
    - name: large copy
      copy:
        src: "{{ big }}"
        dest: /tmp/svc-hostile-copy-{{ marker }}
- hosts: evil
  gather_facts: false
  tasks:
    - name: fetch another host's file
      svc_fetch_file:
        path: "{{ big }}"
    - name: fetch a file never sent
      svc_fetch_file:
        path: "{{ never_sent }}"
- hosts: victim
  gather_facts: false
  tasks:
    - name: clean up
      file:
        path: /tmp/svc-hostile-copy-{{ marker }}
        state: absent
"""


def test_a_target_gets_only_files_sent_to_it(tmp_path, sshd_alive, ssh_env):
    """A file streamed to one host (over 1 MiB goes through the mux's
    FileService) cannot be fetched by another target, nor can a file that
    was never sent."""
    big = tmp_path / 'big.bin'
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    never_sent = tmp_path / 'never-sent.txt'
    never_sent.write_text('secret\n')
    line = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    inventory = (f'evil {line} svc_task_isolation=inline\n'
                 f"victim {line.replace('ansible_user=svc-login', 'ansible_user=root')}\n")
    run = run_playbook(FILE_PB, tmp_path=tmp_path, inventory=inventory,
                       extra_vars={'big': str(big), 'never_sent': str(never_sent), 'marker': os.getpid()},
                       env={'ANSIBLE_LIBRARY': str(LIBRARY)}).assert_ok()
    assert run.task('large copy', 'victim')['status'] == 'changed'
    for task in ("fetch another host's file", 'fetch a file never sent'):
        result = run.task(task, 'evil')['result']
        assert not result['ok'] and result['size'] == 0 and 'not' in (result['error'] or ''), (task, result)


SERVICES_PB = """
- hosts: evil
  gather_facts: false
  tasks:
    - name: call the mux's services
      svc_call_services:
        calls:
          - [ansible_svc.mux.connections.ConnectionService, get, {spec: {transport: local, host: localhost}}]
          - [ansible_svc.mux.connections.ConnectionService, reset, {spec: {transport: ssh, host: 127.0.0.1}}]
          - [ansible_svc.mux.jobs.JobResultService, get, {job_id: anything}]
          - [ansible_svc.mux.jobs.JobResultService, stats, {}]
          - [ansible_svc.mux.job_status.JobStatusService, status, {job_id: x, async_dir: /tmp}]
          - [mitogen.service.FileService, register, {path: /etc/shadow}]
          - [ansible_svc.target.filecache.PushFileCache, store_and_forward, {path: /x, data: '', context: null}]
          - [ansible_svc.mux.jobs.JobResultService, push, {job_id: never-issued, result: {rc: 0}}]
"""


def test_a_target_may_call_only_push_and_only_for_its_jobs(tmp_path, sshd_alive, ssh_env):
    """Every service method but JobResultService.push is for parents only;
    a push for an id never issued to the target is parked, never delivered
    (the unit tests cover its caps)."""
    line = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    run = run_playbook(SERVICES_PB, tmp_path=tmp_path, inventory=f'evil {line} svc_task_isolation=inline\n',
                       env={'ANSIBLE_LIBRARY': str(LIBRARY)}).assert_ok()
    answers = run.task("call the mux's services", 'evil')['result']['answers']
    *refused, push = answers
    for answer in refused:
        assert not answer['accepted'] and 'not authorized' in answer['error'], answers
    assert push['accepted'] and push['answer'] == 'True', push  # parked, not delivered


FLOOD_PB = """
- hosts: evil
  gather_facts: false
  tasks:
    - name: flood the mux with unsolicited results
      svc_call_services:
        flood: 100
        flood_size: 2097152
    - name: the mux's memory
      debug:
        msg: "{{ lookup('pipe', 'grep VmRSS /proc/$(pgrep -f \\"[a]nsible_svc.mux --socket ' ~ tmpdir ~ '\\")/status') }}"
"""


def test_a_flood_of_unsolicited_results_is_refused_beyond_the_caps(tmp_path, sshd_alive, ssh_env):
    """100 results of 2 MiB for job ids never issued: the mux parks what
    its per-target caps allow (64 MiB), refuses the rest with a log line,
    and stays small (unbounded, it once grew to 1.4 GB)."""
    private_tmp = tmp_path / 'tmpdir'
    private_tmp.mkdir()
    line = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    run = run_playbook(FLOOD_PB, tmp_path=tmp_path, inventory=f'evil {line} svc_task_isolation=inline\n',
                       extra_vars={'tmpdir': str(private_tmp)}, env={'ANSIBLE_LIBRARY': str(LIBRARY),
                                                                    'TMPDIR': str(private_tmp)}).assert_ok()
    flooded = run.task('flood the mux with unsolicited results', 'evil')['result']['flooded']
    assert flooded['accepted'] + flooded['refused'] == 100, flooded
    assert flooded['accepted'] <= 32 and flooded['refused'] >= 68, flooded  # 64 MiB of 2 MiB results
    assert 'refused push from context' in run.stderr
    rss_kb = int(run.task("the mux's memory", 'evil')['result']['msg'].split()[1])
    print(f'flood: {flooded}, mux RSS {rss_kb} kB')
    assert rss_kb < 400 * 1024, rss_kb
