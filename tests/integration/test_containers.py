"""Container connections against vanilla (issue 14): a podman and a docker
container and a chroot, built by tests/env/containers.sh from one Debian
root, reached by svc_podman, svc_docker and svc_chroot and by the vanilla
plugins they stand in for (containers.podman.podman,
community.docker.docker, community.general.chroot)."""
from __future__ import annotations

import json
import uuid

import pytest

from helpers import STATE, assert_same_results, run_playbook

# Containers' exec plumbing: no ansible-core code takes part (see conftest.py).
pytestmark = pytest.mark.newest_core_only

CONTAINERS_ENV = STATE / 'containers' / 'env.json'


@pytest.fixture(scope='module')
def containers():
    if not CONTAINERS_ENV.exists():
        pytest.skip(f'container targets not set up: run `make env` as root ({CONTAINERS_ENV} is missing)')
    return json.loads(CONTAINERS_ENV.read_text())


def inventory(env, python='/usr/bin/python3', podman=None):
    hosts = [
        f"pod ansible_connection=containers.podman.podman ansible_host={podman or env['podman']}",
        f"dock ansible_connection=community.docker.docker ansible_host={env['docker']} "
        f"ansible_docker_extra_args='-H {env['docker_host']}'",
        f"chr ansible_connection=community.general.chroot ansible_host={env['chroot']}",
    ]
    return '[all]\n' + '\n'.join(f'{h} ansible_python_interpreter={python}' for h in hosts) + '\n'


def run(env, playbook, tmp_path, strategy, **kwargs):
    extra = {'COLLECTIONS': None, 'ANSIBLE_COLLECTIONS_PATH': env['collections']}
    extra.update(kwargs.pop('env', {}))
    return run_playbook(playbook, tmp_path=tmp_path / strategy, strategy=strategy, env=extra, timeout=240, **kwargs)


PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    dest: "/tmp/svc-ctr-{{ run_id }}"
  tasks:
    - name: inside
      command: cat /etc/svc-test-root
    - name: copy
      copy: {content: "hello ü\\n", dest: "{{ dest }}", mode: "0640"}
    - name: copy again
      copy: {content: "hello ü\\n", dest: "{{ dest }}", mode: "0640"}
    - name: stat
      stat: {path: "{{ dest }}"}
    - name: template
      template: {src: "{{ template_src }}", dest: "{{ dest }}.t"}
    - name: slurp
      slurp: {src: "{{ dest }}.t"}
    - name: fetch
      fetch: {src: "{{ dest }}", dest: "{{ fetch_dir }}/{{ inventory_hostname }}", flat: true}
    - name: shell with stdin
      shell: cat; echo "rc from sh" >&2; exit 3
      args: {stdin: "from stdin"}
      ignore_errors: true
    - name: raw
      raw: echo hi; echo err >&2
    # ansible-svc talks to su on a terminal, and the test chroot has no
    # /dev/pts (docs/limits.md).
    - name: become with su
      command: id -un
      become: true
      become_method: su
      become_user: svc-ctr
      when: inventory_hostname != 'chr'
    - name: facts
      setup: {gather_subset: [min], filter: [ansible_system, ansible_python_version, ansible_user_id]}
    - name: clean up
      file: {path: "{{ item }}", state: absent}
      loop: ["{{ dest }}", "{{ dest }}.t"]
"""


def test_container_tasks_match_vanilla(containers, tmp_path):
    template = tmp_path / 't.j2'
    template.write_text('host={{ inventory_hostname }} ü\n')
    runs = {}
    run_id = uuid.uuid4().hex[:8]
    for strategy in ('linear', 'svc_linear'):
        fetched = tmp_path / f'fetched-{strategy}'
        extra_vars = {'run_id': run_id, 'template_src': str(template), 'fetch_dir': str(fetched)}
        runs[strategy] = run(containers, PLAYBOOK, tmp_path, strategy, inventory=inventory(containers),
                             extra_vars=extra_vars)
        for host in ('pod', 'dock', 'chr'):
            assert (fetched / host).read_text() == 'hello ü\n', runs[strategy].output
    vanilla, svc = runs['linear'], runs['svc_linear']
    for host in ('pod', 'dock', 'chr'):
        assert vanilla.task('inside', host)['result']['stdout'] == 'svc-test-root', vanilla.output
    for host in ('pod', 'dock'):
        assert svc.task('become with su', host)['result']['stdout'] == 'svc-ctr', svc.output
    # containers.podman runs a command's words without a shell; so do we.
    assert svc.task('raw', 'pod')['result']['stdout'] == 'hi; echo err >&2\n'
    assert svc.task('raw', 'dock')['result']['stdout'] == 'hi\n'
    assert_same_results(vanilla, svc, skip_tasks=('fetch',))
    for host in ('pod', 'dock', 'chr'):  # fetched to a directory of each run's own
        assert dict(vanilla.task('fetch', host)['result'], dest=None) == dict(svc.task('fetch', host)['result'], dest=None)


PARENTS = """
- hosts: all
  gather_facts: false
  vars:
    # Modules in the interpreter itself: the shell's parent is the interpreter.
    svc_task_isolation: inline
  tasks:
    - name: first
      shell: "echo $PPID; cat /proc/$PPID/cmdline 2>/dev/null | tr '\\\\0' ' '; true"
    - name: second
      shell: "echo $PPID; cat /proc/$PPID/cmdline 2>/dev/null | tr '\\\\0' ' '; true"
"""


def _parent(result, task, host):
    """(pid, command line) of the process that ran `task`'s shell, as seen
    in the container; the chroot has no /proc, so no command line there."""
    lines = result.task(task, host)['result']['stdout'].split('\n') + ['']
    return lines[0], lines[1]


def test_tasks_run_in_one_persistent_interpreter_per_container(containers, tmp_path):
    """Every task's shell has the same parent: the interpreter ansible-svc
    started (named so where /proc tells); vanilla's is a fresh python per
    task."""
    svc = run(containers, PARENTS, tmp_path, 'svc_linear', inventory=inventory(containers)).assert_ok()
    for host in ('pod', 'dock', 'chr'):
        first, second = _parent(svc, 'first', host), _parent(svc, 'second', host)
        assert first[0] == second[0], (host, first, second)
        assert host == 'chr' or 'mitogen:ansible-svc' in first[1], (host, first)
    vanilla = run(containers, PARENTS, tmp_path, 'linear', inventory=inventory(containers)).assert_ok()
    for host in ('pod', 'dock', 'chr'):
        assert _parent(vanilla, 'first', host)[0] != _parent(vanilla, 'second', host)[0]


def test_connection_mode_serves_containers_under_the_stock_strategy(containers, tmp_path):
    inv = (inventory(containers).replace('containers.podman.podman', 'svc_podman')
           .replace('community.docker.docker', 'svc_docker').replace('community.general.chroot', 'svc_chroot'))
    result = run(containers, PARENTS, tmp_path, 'linear', inventory=inv).assert_ok()
    for host in ('pod', 'dock', 'chr'):
        assert _parent(result, 'first', host)[0] == _parent(result, 'second', host)[0], (host, result.output)
        assert host == 'chr' or 'mitogen:ansible-svc' in _parent(result, 'first', host)[1], (host, result.output)


MISSING_PYTHON = """
- hosts: all
  gather_facts: false
  tasks:
    - name: raw without the interpreter
      raw: echo raw-ok
    - name: module without the interpreter
      command: "true"
      ignore_errors: true
"""


def test_a_container_without_the_python_runs_raw_and_fails_modules_as_vanilla(containers, tmp_path):
    runs = {s: run(containers, MISSING_PYTHON, tmp_path, s, inventory=inventory(containers, python='/usr/bin/python9'))
            for s in ('linear', 'svc_linear')}
    for host in ('pod', 'dock', 'chr'):
        assert runs['svc_linear'].task('raw without the interpreter', host)['result']['stdout'] == 'raw-ok\n'
        for strategy, result in runs.items():
            module = result.task('module without the interpreter', host)
            assert (module['status'], module['result']['rc']) == ('failed', 127), (strategy, module)
    # podman exec loses the stderr of a command that fails at once now and
    # then (vanilla's results vary between runs too): compared above.
    assert_same_results(runs['linear'], runs['svc_linear'], skip_tasks=('module without the interpreter',))


def test_a_missing_container_is_unreachable_as_in_vanilla(containers, tmp_path):
    runs = {s: run(containers, PARENTS, tmp_path, s, inventory=inventory(containers, podman='svc-test-no-such'),
                   args=['--limit', 'pod']) for s in ('linear', 'svc_linear')}
    for strategy, result in runs.items():
        assert result.task('first', 'pod')['status'] == 'unreachable', (strategy, result.output)
