"""Every way in (issue 13): the svc_free and svc_host_pinned strategies, the
connection-only mode under stock strategies (by short and FQCN name, set in
inventory or for everyone with ``transport``), ad-hoc ``ansible``, and the
switch that turns ansible-svc off for one run. Each against vanilla.

How a task proves it was accelerated: its shell's parent process is one of
our interpreters (``python3(mitogen:ansible-svc)``), where vanilla's is sh
or sshd. How a run proves it started one mux: the worker that starts it says
so at -vvv, once.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import (REPO, VENV_BIN, assert_same_results, connection_only, inventory_for, prepare_playbook, processes,
                     read_results, run_playbook)

#: Differ between runs by construction: job ids and files, each run's own
#: copy destination, how many status polls it took, our status source.
DIFFERS = frozenset({'ansible_job_id', 'results_file', 'erased', 'dest', 'attempts', 'ansible_svc'})

STARTED = 'started the ansible-svc mux'

#: Not compared with vanilla: the parent process differs by design.
UNCOMPARED = {'parent'}

FEATURES_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
      register: parent
      changed_when: false
    - name: command
      command: id -un
    - name: become
      command: id -un
      become: true
    - name: loop
      command: echo {{ item }}
      loop: [one, two, three]
    - name: copy
      copy:
        content: "{{ inventory_hostname }}\\n"
        dest: "{{ out }}/{{ inventory_hostname }}-{{ label }}"
    # Output first: ansible-core's run_command stops reading when its 1 s
    # select times out just as the command exits, so `sleep 1; echo x`
    # sometimes returns an empty stdout, under vanilla as under ours.
    - name: poll
      shell: echo polled; sleep 1
      async: 20
      poll: 5
    - name: start a job
      command: echo job
      async: 20
      poll: 0
      register: job
    - name: job status
      mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 40
      delay: 0.25
    - name: inline
      command: echo inline
      vars:
        svc_task_isolation: inline
"""


@pytest.fixture
def out_dir():
    """Where svc-login may write (pytest's tmp_path is private to root)."""
    out = Path(tempfile.mkdtemp(prefix='svc-entry-out-'))
    os.chmod(out, 0o1777)
    yield out
    shutil.rmtree(out)


def _features(tmp_path, strategy, inventory, label, out, env=None):
    run = run_playbook(FEATURES_PB, tmp_path=tmp_path / label, strategy=strategy, inventory=inventory,
                       extra_vars={'out': str(out), 'label': label}, args=['-vvv'], env=env).assert_ok()
    if label != 'vanilla':
        for host in ('target', 'local'):
            assert run.task('poll', host)['result']['stdout'] == 'polled', host
    return run


def _accelerated(run, hosts=('target', 'local')):
    for host in hosts:
        parent = run.task('parent', host)['result']['stdout']
        assert 'mitogen:ansible-svc' in parent, (host, parent)


def _vanilla(run, hosts=('target', 'local')):
    for host in hosts:
        parent = run.task('parent', host)['result']['stdout']
        assert 'mitogen:ansible-svc' not in parent, (host, parent)


@pytest.mark.parametrize('strategy', ['free', 'host_pinned'])
def test_svc_strategies_match_vanilla(tmp_path, sshd_alive, ssh_env, out_dir, strategy):
    inventory = inventory_for(ssh_env)
    vanilla = _features(tmp_path, strategy, inventory, 'vanilla', out_dir)
    svc = _features(tmp_path, f'svc_{strategy}', inventory, 'svc', out_dir)
    _vanilla(vanilla)
    _accelerated(svc)
    assert_same_results(vanilla, svc, drop=DIFFERS, skip_tasks=UNCOMPARED)
    assert svc.output.count(STARTED) == 0  # the strategy started it, in the controller


FREE_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: slow
      command: sleep {{ 5 if inventory_hostname == 'target' else 0 }}
    - name: second
      command: echo second
    - name: third
      command: echo third
"""


@pytest.mark.parametrize('strategy,independent', [('svc_free', True), ('svc_host_pinned', True),
                                                  ('linear', False), ('free', True)])
def test_hosts_progress_independently(tmp_path, sshd_alive, ssh_env, strategy, independent):
    """Under free strategies the fast host is done with the play while the
    slow one still sleeps; under linear it waits for it at every task."""
    run = run_playbook(FREE_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env), strategy=strategy).assert_ok()
    order = [(r['host'], r['task']) for r in run.results]
    fast_done = order.index(('local', 'third'))
    slow_done = order.index(('target', 'slow'))
    assert (fast_done < slow_done) == independent, order
    for host in ('target', 'local'):
        assert run.task('third', host)['result']['stdout'] == 'third'


@pytest.mark.parametrize('strategy', ['linear', 'ansible.builtin.linear', 'free', 'host_pinned'])
def test_connection_only_mode_matches_vanilla(tmp_path, sshd_alive, ssh_env, out_dir, strategy):
    """Stock strategies, our connections set in the inventory: accelerated,
    vanilla's results, one mux for the run."""
    vanilla = _features(tmp_path, strategy, inventory_for(ssh_env), 'vanilla', out_dir)
    svc = _features(tmp_path, strategy, connection_only(inventory_for(ssh_env)), 'svc', out_dir)
    _vanilla(vanilla)
    _accelerated(svc)
    assert_same_results(vanilla, svc, drop=DIFFERS, skip_tasks=UNCOMPARED)
    assert svc.output.count(STARTED) == 1, svc.output
    assert 'strategy plugins not included in ansible.builtin are deprecated' not in svc.output
    assert svc.task('job status', 'target')['result']['ansible_svc']['source'] == 'service'


MANY_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
"""


def test_connection_only_mode_starts_one_mux_for_many_forks(tmp_path, sshd_alive, ssh_env):
    """Twelve hosts, twelve forks all needing the mux at once, through the
    one ansible.cfg line (``transport``): exactly one mux starts."""
    line = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    inventory = ''.join(f'h{n} {line}\n' for n in range(12))
    run = run_playbook(MANY_PB, tmp_path=tmp_path, inventory=inventory, strategy='linear', args=['-vvv'],
                       env={'ANSIBLE_TRANSPORT': 'svc_ssh', 'ANSIBLE_FORKS': '12'}).assert_ok()
    for n in range(12):
        assert 'mitogen:ansible-svc' in run.task('parent', f'h{n}')['result']['stdout']
    assert run.output.count(STARTED) == 1, run.output


def test_connection_only_mode_by_fqcn_from_the_collection(tmp_path, sshd_alive, ssh_env):
    """``ansible_svc.accel.svc_ssh`` and ``.svc_local`` as the hosts'
    connections, found through the collections path."""
    collections = tmp_path / 'collections' / 'ansible_collections' / 'ansible_svc'
    collections.mkdir(parents=True)
    (collections / 'accel').symlink_to(REPO)
    run = run_playbook(MANY_PB, tmp_path=tmp_path, inventory=connection_only(inventory_for(ssh_env), fqcn=True),
                       strategy='linear', env={'ANSIBLE_COLLECTIONS_PATH': str(tmp_path / 'collections')}).assert_ok()
    _accelerated(run)


def _adhoc(tmp_path, inventory, *args, env=None):
    inv = tmp_path / 'adhoc.ini'
    inv.write_text(inventory)
    _, run_env, _ = prepare_playbook(MANY_PB, tmp_path=tmp_path, inventory=inventory, env=env)
    run_env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
    return subprocess.run([str(VENV_BIN / 'ansible'), 'all', '-i', str(inv), *args], cwd=tmp_path, env=run_env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('mode', ['svc_linear', 'connection'])
def test_adhoc_is_accelerated(tmp_path, sshd_alive, ssh_env, mode):
    """``ansible -m ping``, ``-m shell``, ``-b``: right answers, through our
    interpreters, in both modes."""
    inventory = inventory_for(ssh_env)
    env = {'ANSIBLE_STRATEGY': 'svc_linear'}
    if mode == 'connection':
        inventory, env = connection_only(inventory), {'ANSIBLE_STRATEGY': 'linear'}
    ping = _adhoc(tmp_path, inventory, '-m', 'ping', env=env)
    assert ping.returncode == 0 and ping.stdout.count('"ping": "pong"') == 2, ping.stdout + ping.stderr
    shell = _adhoc(tmp_path, inventory, '-m', 'shell', '-a', "cat /proc/$PPID/cmdline | tr '\\0' ' '", env=env)
    assert shell.returncode == 0 and shell.stdout.count('mitogen:ansible-svc') == 2, shell.stdout + shell.stderr
    become = _adhoc(tmp_path, inventory, '-b', '-m', 'command', '-a', 'id -un', '--limit', 'target', env=env)
    assert become.returncode == 0 and 'CHANGED' in become.stdout and become.stdout.strip().endswith('root'), (
        become.stdout + become.stderr)


@pytest.mark.parametrize('mode', ['svc_linear', 'connection'])
def test_switched_off_for_one_run(tmp_path, sshd_alive, ssh_env, out_dir, mode):
    """ANSIBLE_SVC_DISABLE=1: same playbook, same files, all vanilla and the
    same results."""
    inventory = inventory_for(ssh_env)
    strategy = 'svc_linear'
    if mode == 'connection':
        inventory, strategy = connection_only(inventory), 'linear'
    off = _features(tmp_path, strategy, inventory, 'off', out_dir, env={'ANSIBLE_SVC_DISABLE': '1'})
    _vanilla(off)
    assert 'ansible_svc' not in off.task('job status', 'target')['result']
    vanilla = _features(tmp_path, 'linear', inventory_for(ssh_env), 'vanilla', out_dir)
    assert_same_results(vanilla, off, drop=DIFFERS, skip_tasks=UNCOMPARED)
    results, _ = read_results(tmp_path / 'off' / 'results.jsonl')
    assert results


DELEGATION_PB = """
- hosts: h0,h1,h2,h3,h4
  gather_facts: false
  tasks:
    - name: delegated sleep
      command: sleep {{ sleep_for }}
      delegate_to: "{{ to }}"
      changed_when: false
    - name: delegated who
      command: id -un
      delegate_to: "{{ to }}"
    - name: local_action
      local_action: command echo {{ inventory_hostname }}
    - name: delegated facts
      setup:
        gather_subset: [min]
        filter: [ansible_system, ansible_user_id]
      delegate_to: "{{ to }}"
      delegate_facts: true
    - name: facts landed on the delegate
      debug:
        msg: "{{ hostvars[to].ansible_system | default('none') }} {{ ansible_system | default('none') }}"
    - name: delegated facts without delegate_facts
      setup:
        gather_subset: [min]
        filter: [ansible_user_id]
      delegate_to: "{{ to }}"
    - name: facts landed on the host
      debug:
        msg: "{{ ansible_user_id | default('none') }}"
"""


@pytest.mark.parametrize('to', ['local', 'target'])
@pytest.mark.parametrize('strategy', ['linear', 'svc_linear'])
def test_delegation_runs_in_parallel(tmp_path, sshd_alive, ssh_env, strategy, to):
    """Five hosts delegating to one host (localhost, or an ssh host) run the
    task side by side, as vanilla's five connections do, though ours share
    one interpreter: all five delegated sleeps are seen running at once.
    Results, delegated facts and delegate_facts as vanilla's."""
    inventory = inventory_for(ssh_env)
    line = inventory.splitlines()[1].split(' ', 1)[1]
    inventory += ''.join(f'h{n} {line}\n' for n in range(5))
    sleep_for = '3.%d' % (os.getpid() % 1000 * 10 + (strategy == 'svc_linear') * 2 + (to == 'target'))
    cmd, env, results_file = prepare_playbook(DELEGATION_PB, tmp_path=tmp_path, inventory=inventory,
                                              strategy=strategy, extra_vars={'sleep_for': sleep_for, 'to': to},
                                              env={'ANSIBLE_FORKS': '5'})
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    most = 0
    while proc.poll() is None:
        most = max(most, sum(1 for _, c in processes().values() if c == f'sleep {sleep_for}'))
        time.sleep(0.05)
    out = proc.stdout.read()
    assert proc.returncode == 0, out
    assert most == 5, (most, out)
    results, _ = read_results(results_file)
    outcome = {(r['host'], r['task']): r for r in results}
    for n in range(5):
        host = f'h{n}'
        assert outcome[(host, 'local_action')]['result']['stdout'] == host
        assert outcome[(host, 'facts landed on the delegate')]['result']['msg'] == 'Linux none'
        user = 'root' if to == 'local' else 'svc-login'
        assert outcome[(host, 'delegated who')]['result']['stdout'] == user
        assert outcome[(host, 'facts landed on the host')]['result']['msg'] == user


def test_a_strategy_without_its_connections_names_the_missing_plugin(ssh_env, sshd_alive, tmp_path):
    """The svc_linear strategy on the plugin path but not svc_ssh/svc_local:
    the error names our plugin and the setting, not the host's 'ssh'."""
    cfg = tmp_path / 'strategy-only.cfg'
    cfg.write_text(f"[defaults]\nstrategy_plugins = {REPO / 'plugins' / 'strategy'}\n")
    pb = '- hosts: all\n  gather_facts: false\n  tasks:\n    - name: ping\n      ping:\n'
    r = run_playbook(pb, tmp_path=tmp_path / 'run', inventory=inventory_for(ssh_env), strategy='svc_linear',
                     env={'ANSIBLE_CONFIG': str(cfg), 'ANSIBLE_COLLECTIONS_PATH': str(tmp_path / 'no-collections')})
    assert r.rc != 0, r.output
    for host, ours in (('target', 'svc_ssh'), ('local', 'svc_local')):
        msg = r.task('ping', host)['result']['msg']
        assert f"its connection plugin '{ours}', which Ansible cannot find" in msg and 'connection_plugins' in msg, msg
    assert "plugin 'ssh' was not found" not in r.output, r.output
