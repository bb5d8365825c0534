"""Async tasks: poll: N woken by the job's push, poll: 0 with async_status
and mitogen_async_status, jobs that outlive their connection and their run,
the time limit, odd modules, many jobs polled at once, forged pushes."""
from __future__ import annotations

import datetime
import glob
import os
import time
import uuid
from pathlib import Path


from ansible_svc.controller import compat
from helpers import assert_same_results, inventory_for, normalize, processes, run_playbook

#: Job ids and job file paths differ between runs by construction.
JOB_KEYS = frozenset({'ansible_job_id', 'results_file', 'erased'})

ASYNC_DIRS = {'svc-login': '/home/svc-login/.ansible_async', 'root': '/root/.ansible_async'}


def job_files(jids):
    return [path for path in glob.glob('/home/svc-login/.ansible_async/*') + glob.glob('/root/.ansible_async/*')
            if os.path.basename(path) in set(jids)]


def _both(pb, tmp_path, inventory, **kw):
    return {s: run_playbook(pb, tmp_path=tmp_path / s, strategy=s, inventory=inventory, **kw)
            for s in ('linear', 'svc_linear')}


POLL_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: poll
      shell: echo "out $(id -un)"; echo err >&2; sleep 1
      async: 20
      poll: 10
    - name: poll as root
      command: id -un
      async: 20
      poll: 2
      become: true
    - name: poll failing
      command: "false"
      async: 20
      poll: 2
      ignore_errors: true
"""


def test_poll_matches_vanilla_and_ends_with_the_job(tmp_path, sshd_alive, ssh_env):
    # A remote tmp of this test's own: other runs on the machine (a second
    # checkout's tests) use ~/.ansible/tmp of the same account.
    remote_tmp = '.ansible/tmp-%s' % uuid.uuid4().hex
    runs = _both(POLL_PB, tmp_path, inventory_for(ssh_env), env={'ANSIBLE_REMOTE_TMP': '~/' + remote_tmp})
    for run in runs.values():
        assert run.rc == 0, run.output
    assert_same_results(runs['linear'], runs['svc_linear'], drop=JOB_KEYS)
    svc = runs['svc_linear']
    for host, user in (('target', 'svc-login'), ('local', 'root')):
        poll = svc.task('poll', host)
        assert poll['result']['stdout'] == 'out %s' % user and poll['result']['stderr'] == 'err'
        assert svc.task('poll as root', host)['result']['stdout'] == 'root'
        assert svc.task('poll failing', host)['status'] == 'failed'
        # The task ended when the job did, not at the 10 s poll tick.
        ended = datetime.datetime.strptime(poll['result']['end'], '%Y-%m-%d %H:%M:%S.%f').timestamp()
        assert poll['time'] - ended < 5.0, (poll['time'] - ended, svc.output)
    # As in vanilla, polled jobs leave no job file and no temp dir behind.
    jids = [r['result']['ansible_job_id'] for r in svc.results]
    assert len(jids) == 6 and not job_files(jids)
    assert os.path.isdir('/home/svc-login/' + remote_tmp)  # it was used
    assert not glob.glob('/home/svc-login/%s/ansible-tmp-*' % remote_tmp)
    os.rmdir('/home/svc-login/' + remote_tmp)


POLL0_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: start
      shell: echo "hello $(id -un)"; sleep 1
      async: 30
      poll: 0
      register: job
    - name: start as root
      command: id -un
      async: 30
      poll: 0
      become: true
      register: rootjob
    - name: builtin status
      async_status:
        jid: "{{ job.ansible_job_id }}"
      register: builtin
      until: builtin.finished
      retries: 40
      delay: 0.25
    - name: our status
      mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
      register: ours
      until: ours.finished
      retries: 40
      delay: 0.25
    - name: our status as root
      mitogen_async_status:
        jid: "{{ rootjob.ansible_job_id }}"
      become: true
      register: rootstatus
      until: rootstatus.finished
      retries: 40
      delay: 0.25
    - name: our cleanup
      mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
        mode: cleanup
    - name: our cleanup as root
      mitogen_async_status:
        jid: "{{ rootjob.ansible_job_id }}"
        mode: cleanup
      become: true
    - name: status after cleanup
      mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
      ignore_errors: true
    - name: builtin status after cleanup
      async_status:
        jid: "{{ job.ansible_job_id }}"
      ignore_errors: true
    - name: second cleanup
      mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
        mode: cleanup
      ignore_errors: true
"""


def test_poll0_then_async_status_and_mitogen_async_status(tmp_path, sshd_alive, ssh_env):
    svc = run_playbook(POLL0_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env)).assert_ok()
    for host, user in (('target', 'svc-login'), ('local', 'root')):
        start = svc.task('start', host)['result']
        assert start['started'] and not start['finished']
        assert start['results_file'] == '%s/%s' % (ASYNC_DIRS[user], start['ansible_job_id'])
        builtin = svc.task('builtin status', host)['result']
        ours = svc.task('our status', host)['result']
        assert builtin['stdout'] == ours['stdout'] == 'hello %s' % user
        # Same fields as the builtin action, plus where the answer came from.
        assert set(ours) - set(builtin) == {'ansible_svc'}
        assert ours['ansible_svc']['source'] == 'service'
        for key in ('started', 'finished', 'changed', 'rc', 'results_file', 'ansible_job_id', 'stdout_lines'):
            assert ours[key] == builtin[key], key
        assert svc.task('our status as root', host)['result']['stdout'] == 'root'
        assert svc.task('our cleanup', host)['result']['erased'] == start['results_file']
        after = svc.task('status after cleanup', host)
        assert after['status'] == 'failed' and after['result']['msg'] == 'could not find job'
        builtin_after = svc.task('builtin status after cleanup', host)
        assert builtin_after['status'] == 'failed' and builtin_after['result']['msg'] == 'could not find job'
        second = svc.task('second cleanup', host)
        assert second['status'] == 'failed' and second['result']['msg'] == 'could not find job'
    jids = [svc.task(t, h)['result']['ansible_job_id'] for t in ('start', 'start as root') for h in ('target', 'local')]
    assert not job_files(jids)


OUTLIVE_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: start
      # Waits (at most 60 s) for the test to open the gate.
      shell: for i in $(seq 600); do [ -e {{ gate }} ] && break; sleep 0.1; done; echo survived {{ marker }}
      async: 60
      poll: 0
      register: job
    - name: drop the connection
      meta: reset_connection
"""

STATUS_PB = """
- hosts: target
  gather_facts: false
  tasks:
    - name: our status
      mitogen_async_status:
        jid: "{{ jid }}"
      register: ours
      until: ours.finished
      retries: 60
      delay: 0.25
    - name: builtin status
      async_status:
        jid: "{{ jid }}"
    - name: cleanup
      mitogen_async_status:
        jid: "{{ jid }}"
        mode: cleanup
"""


def test_job_outlives_its_connection_and_its_run(tmp_path, sshd_alive, ssh_env):
    marker = uuid.uuid4().hex
    gate = Path('/tmp/svc-gate-%s' % marker)
    inventory = inventory_for(ssh_env)
    try:
        first = run_playbook(OUTLIVE_PB, tmp_path=tmp_path / 'first', inventory=inventory,
                             extra_vars={'marker': marker, 'gate': str(gate)}).assert_ok()
        jid = first.task('start')['result']['ansible_job_id']
        # The run is over (mux and interpreters gone); the job still runs
        # (its shell may take a moment to start: the module is a new Python).
        deadline = time.monotonic() + 15
        while not any(marker in cmd for _, cmd in processes().values()):
            assert time.monotonic() < deadline, 'the job is not running after its run ended'
            time.sleep(0.1)
    finally:
        gate.touch()
    second = run_playbook(STATUS_PB, tmp_path=tmp_path / 'second', inventory=inventory,
                          extra_vars={'jid': jid}).assert_ok()
    ours = second.task('our status')['result']
    assert ours['stdout'] == 'survived %s' % marker and ours['rc'] == 0
    assert ours['ansible_svc']['source'] == 'job_file'
    assert second.task('builtin status')['result']['stdout'] == ours['stdout']
    assert not job_files([jid])
    gate.unlink()


TIMEOUT_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: polled
      shell: sleep 60.{{ marker }} & sleep 61.{{ marker }}
      async: 2
      poll: 1
      ignore_errors: true
    - name: fire and forget
      shell: sleep 62.{{ marker }}
      async: 2
      poll: 0
      register: job
    - name: status
      mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 40
      delay: 0.25
      ignore_errors: true
"""


def test_time_limit_kills_the_job_and_its_group(tmp_path, sshd_alive, ssh_env):
    marker = str(uuid.uuid4().int)[:12]  # digits: sleep takes 60.<marker> seconds
    svc = run_playbook(TIMEOUT_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env),
                       extra_vars={'marker': marker}).assert_ok()
    for host in ('target', 'local'):
        polled = svc.task('polled', host)
        assert polled['status'] == 'failed'
        assert polled['result']['msg'] == compat.adapter().poll_gave_up(2)
        assert polled['result']['async_result']['finished'] is False
        status = svc.task('status', host)
        assert status['status'] == 'failed'
        assert status['result']['msg'] == 'Timeout exceeded' and status['result']['child_pid']
    left = [cmd for _, cmd in processes().values() if marker in cmd]
    assert not left, left


ODD_MODULES = {
    # Prints something that is not JSON.
    'svc_junk': '#!/bin/sh\necho "this is not json"\n',
    # WANT_JSON shell module: reads its args file, prints JSON.
    'svc_want_json': '#!/bin/sh\n# WANT_JSON\necho "{\\"changed\\": false, \\"args\\": $(cat "$1")}"\n',
    # A "binary" module as Ansible classifies them (non-text bytes in its
    # first KiB): transferred as a file, run directly with an args file.
    'svc_binary': '#!/bin/sh\n# \x01\x02 binary marker\necho "{\\"changed\\": false, \\"binary\\": true, \\"args\\": $(cat "$1")}"\n',
}

ODD_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: junk
      svc_junk:
      async: 20
      poll: 1
      ignore_errors: true
    - name: want json
      svc_want_json:
        greeting: hi
      async: 20
      poll: 1
    - name: binary
      svc_binary:
        greeting: hi
      async: 20
      poll: 1
    - name: failing python module
      file:
        path: /nonexistent/dir/file
        state: file
      async: 20
      poll: 1
      ignore_errors: true
"""


def _with_modules(playbook, modules, tmp_path, ssh_env):
    """{strategy: result} of `playbook` run by vanilla and by us, with
    `modules` ({name: text}) in a library beside it."""
    runs = {}
    for strategy in ('linear', 'svc_linear'):
        library = tmp_path / strategy / 'library'
        library.mkdir(parents=True)
        for name, text in modules.items():
            (library / name).write_text(text)
        runs[strategy] = run_playbook(playbook, tmp_path=tmp_path / strategy, strategy=strategy,
                                      inventory=inventory_for(ssh_env))
        assert runs[strategy].rc == 0, runs[strategy].output
    return runs


def test_odd_modules_match_vanilla(tmp_path, sshd_alive, ssh_env):
    runs = _with_modules(ODD_PB, ODD_MODULES, tmp_path, ssh_env)
    # Error text names the job's own paths and tracebacks; compare the rest.
    assert_same_results(runs['linear'], runs['svc_linear'], drop=JOB_KEYS | {'msg', 'cmd', 'exception'})
    svc = runs['svc_linear']
    for host in ('target', 'local'):
        assert svc.task('junk', host)['status'] == 'failed'
        assert svc.task('want json', host)['result']['args']['greeting'] == 'hi'
        assert svc.task('binary', host)['result']['binary'] is True
        assert svc.task('failing python module', host)['status'] == 'failed'


MANY_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: start
      command: sleep 1.{{ item }}
      async: 60
      poll: 0
      loop: "{{ range(10) | list }}"
      register: jobs
    - name: wait
      mitogen_async_status:
        jid: "{{ item }}"
      loop: "{{ groups['all'] | map('extract', hostvars) | selectattr('svc_group', 'equalto', svc_group)
                | map(attribute='jobs.results') | flatten | map(attribute='ansible_job_id') | list }}"
      register: status
      until: status.finished
      retries: 60
      delay: 0.25
    - name: again
      mitogen_async_status:
        jid: "{{ item }}"
      loop: "{{ status.results | map(attribute='item') | list }}"
      register: again
"""


def test_fifty_jobs_polled_concurrently_share_lookups(tmp_path, sshd_alive, ssh_env):
    # Four inventory hosts for one ssh account share one target interpreter
    # (the same connection), and all four poll all their 40 jobs; one local
    # host polls its own 10. 50 jobs, 4 x 40 + 10 = 170 final answers.
    target = inventory_for(ssh_env).splitlines()[1].split(' ', 1)[1]
    inventory = '\n'.join(['[all]'] + ['t%d %s svc_group=ssh' % (i, target) for i in range(4)]
                          + ['local ansible_connection=local ansible_python_interpreter=/usr/bin/python3 svc_group=local', ''])
    svc = run_playbook(MANY_PB, tmp_path=tmp_path, inventory=inventory, args=['--forks', '5']).assert_ok()
    started = [r for rec in svc.tasks('start') for r in rec['result']['results']]
    assert len(started) == 50
    finals = [r for rec in svc.tasks('wait') for r in rec['result']['results']]
    assert len(finals) == 170 and all(r['finished'] and r['rc'] == 0 for r in finals)
    # One lookup per distinct job: every host that polled a job got the
    # answer of the same lookup (deduplicated or served from the cache of
    # final answers), and repeating the poll ran no new lookup.
    lookups = {}
    for r in finals + [r for rec in svc.tasks('again') for r in rec['result']['results']]:
        lookups.setdefault(r['ansible_job_id'], set()).add(r['ansible_svc']['lookup'])
    assert len(lookups) == 50
    assert all(len(ids) == 1 for ids in lookups.values()), lookups


def test_forged_push_is_refused(tmp_path, monkeypatch):
    """A target may push only results of jobs issued to it: the real mux,
    two real target interpreters (root and, through sudo, svc-target)."""
    from ansible_svc import names
    from ansible_svc.controller import mux_client, mux_process
    from ansible_svc.controller.session import Session
    from ansible_svc.rpc import cast_service
    from ansible_svc.target import asyncjobs

    monkeypatch.setenv('TMPDIR', str(tmp_path))
    mux = mux_process.MuxProcess.start(pool_size=4, verbosity=0)
    monkeypatch.setenv(mux_client.SOCKET_ENV, mux.socket_path)
    try:
        become = {'method': 'sudo', 'user': 'svc-target', 'password': None, 'exe': 'sudo', 'flags': '-H -S -n'}
        session = Session({'transport': 'local', 'host': 'localhost', 'timeout': 10, 'default_python': '/usr/bin/python3', 'become': become})
        owner, intruder = session.context(False), session.context(True)
        attachment = mux_client.attach()
        mux_id = attachment.mux.context_id
        cast_service(attachment.mux, names.JOBS, 'issue', job_id='jforged.1', context=owner)
        intruder.call(asyncjobs.push_result, mux_id, 'jforged.1', {'text': '{"forged": true}'})
        owner.call(asyncjobs.push_result, mux_id, 'jforged.1', {'text': '{"real": true}'})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = attachment.mux.call_service(names.JOBS, 'get', job_id='jforged.1')
            stats = attachment.mux.call_service(names.JOBS, 'stats')
            if answer['state'] == 'done' and stats['refused']:
                break
            time.sleep(0.05)
        assert answer['state'] == 'done' and answer['result'] == {'text': '{"real": true}'}
        assert stats['refused'] == 1
        session.close()
    finally:
        mux_client.detach()
        mux.stop()


FAILING_MODULES = {
    'svc_no_json': '#!/bin/sh\necho "this is not json"\n',
    'svc_no_end': '#!/bin/sh\necho "{ this starts like json"\n',
    'svc_bad_json': '#!/bin/sh\necho "{ not: json }"\n',
    'svc_crash': '#!/usr/bin/python3\nraise RuntimeError("the module crashed")\n',
    'svc_slow': '#!/bin/sh\nsleep 30\n',
}

def failing_playbook(modules):
    """Each module with ``poll: 1``, then each with ``poll: 0`` and
    ``async_status`` until it has finished."""
    tasks = []
    for name in modules:
        tasks.append(f"""
    - name: {name} polled
      {name}:
      async: 2
      poll: 1
      ignore_errors: true
    - name: {name} started
      {name}:
      async: 2
      poll: 0
      register: started_{name}
    - name: {name} status
      async_status:
        jid: "{{{{ started_{name}.ansible_job_id }}}}"
      register: status
      until: status.finished
      retries: 40
      delay: 0.25
      ignore_errors: true""")
    return "- hosts: target\n  gather_facts: false\n  tasks:" + "".join(tasks) + "\n"


def _last_line(msg):
    return msg.rstrip().splitlines()[-1] if isinstance(msg, str) and msg.strip() else msg


def _failure_shape(result):
    """A task's result with what legitimately differs between runs masked:
    job ids, pids, retries, and the frames of a traceback (vanilla's name
    async_wrapper's file, ours our job runner's) but not its last line."""
    return result['status'], _masked(result['result'])


def _masked(result):
    shape = {k: v for k, v in result.items() if k not in JOB_KEYS | {'child_pid', 'attempts'}}
    if isinstance(shape.get('async_result'), dict):
        shape['async_result'] = _masked(shape['async_result'])
    shape['msg'] = _last_line(shape.get('msg'))
    return normalize(shape)


def test_async_failure_texts_are_vanillas(tmp_path, sshd_alive, ssh_env):
    modules = sorted(FAILING_MODULES)
    runs = _with_modules(failing_playbook(modules), FAILING_MODULES, tmp_path, ssh_env)
    van, svc = runs['linear'], runs['svc_linear']
    for name in modules:
        for task in (f'{name} polled', f'{name} status'):
            if task == 'svc_slow polled':
                continue  # below
            assert _failure_shape(svc.task(task, 'target')) == _failure_shape(van.task(task, 'target')), task
    # A poll: N job at its limit: vanilla's poll loop and async_wrapper's kill
    # race (either may speak first); ours always ends as the poll loop does,
    # in the installed core's words.
    gave_up = compat.adapter().poll_gave_up(2)
    assert svc.task('svc_slow polled', 'target')['result']['msg'] == gave_up
    assert van.task('svc_slow polled', 'target')['result']['msg'] in (gave_up, 'Timeout exceeded')
    messages = {name: _failure_shape(svc.task(f'{name} status', 'target'))[1]['msg'] for name in modules}
    assert messages == {
        'svc_bad_json': 'json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 3 (char 2)',
        'svc_crash': 'ValueError: No start of json char found',  # its traceback went to stderr
        'svc_no_end': 'ValueError: No end of json char found',
        'svc_no_json': 'ValueError: No start of json char found',
        'svc_slow': 'Timeout exceeded',
    }, messages


OTHER_CONNECTION_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: poll
      shell: echo polled; grep -c mitogen /proc/$PPID/cmdline || true
      async: 20
      poll: 1
    - name: start
      command: echo detached
      async: 20
      poll: 0
      register: job
    - name: status
      async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 80
      delay: 0.25
"""


def test_async_on_a_connection_we_do_not_serve_is_vanillas(tmp_path):
    """The poll hook is on the executor class, so it sees every host: a
    connection type ansible-svc does not serve goes straight to vanilla's
    poll, with whatever arguments the installed core passes (2.21: utr=)."""
    from helpers import REPO

    inv = '[all]\nvanilla ansible_connection=svc_test_vanilla ansible_python_interpreter=/usr/bin/python3\n'
    env = {'ANSIBLE_CONNECTION_PLUGINS': os.pathsep.join([str(REPO / 'plugins' / 'connection'),
                                                          str(Path(__file__).parent / 'connection_plugins')])}
    runs = {s: run_playbook(OTHER_CONNECTION_PB, tmp_path=tmp_path / s, strategy=s, inventory=inv, env=env)
            for s in ('linear', 'svc_linear')}
    for run in runs.values():
        assert run.rc == 0, run.output
    assert_same_results(runs['linear'], runs['svc_linear'], drop=JOB_KEYS | {'cmd'})
    svc = runs['svc_linear']
    assert svc.task('poll', 'vanilla')['result']['stdout'] == 'polled\n0'  # not under a mitogen interpreter
    assert svc.task('status', 'vanilla')['result']['stdout'] == 'detached'


WRITER_KILLED_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: writer killed
      # Kills the module's parent: the process that would write the job's
      # final record (vanilla's async_wrapper, our job supervisor).
      shell: kill -KILL $(awk '{print $4}' /proc/$PPID/stat)
      async: 3
      poll: 1
      ignore_errors: true
"""


def test_a_job_whose_record_writer_dies_fails_as_in_vanilla(tmp_path, sshd_alive, ssh_env):
    """The job file stays "started": vanilla polls it until the limit and
    fails; so must we, never reporting the unfinished record as a result."""
    inventory = inventory_for(ssh_env)
    runs = {s: run_playbook(WRITER_KILLED_PB, tmp_path=tmp_path / s, strategy=s, inventory=inventory).assert_ok()
            for s in ('linear', 'svc_linear')}
    for host in ('target', 'local'):
        for strategy, run in runs.items():
            killed = run.task('writer killed', host)
            assert killed['status'] == 'failed', (strategy, host, killed)
            assert killed['result']['msg'] == compat.adapter().poll_gave_up(3), (strategy, host, killed)
            assert killed['result']['async_result']['finished'] is False


WARM_PB = """
- hosts: all
  gather_facts: false
  tasks:
    - name: start
      command: sleep 30.{{ marker }}
      async: 60
      poll: 0
      register: job
"""


def _parent_cmdline(pid: int) -> str:
    stat = Path('/proc/%d/stat' % pid).read_text()
    ppid = int(stat[stat.rindex(')') + 2:].split()[1])
    return Path('/proc/%d/cmdline' % ppid).read_bytes().replace(b'\0', b' ').decode('utf-8', 'replace')


def test_python_module_jobs_start_warm_without_a_new_python(tmp_path, sshd_alive, ssh_env):
    """The job's module runs in a fork of the warm interpreter: no new
    Python runs the uploaded AnsiballZ file (the vanilla way, kept for other
    modules, runs `python .../AnsiballZ_command.py`)."""
    marker = str(uuid.uuid4().int)[:12]
    run = run_playbook(WARM_PB, tmp_path=tmp_path, inventory=inventory_for(ssh_env), args=['-vvv'],
                       extra_vars={'marker': marker}).assert_ok()
    try:
        assert run.output.count('(limit 60s), warm') == 2, run.output
        deadline = time.monotonic() + 15
        while True:
            sleeps = [pid for pid, (_, cmd) in processes().items() if cmd == 'sleep 30.%s' % marker]
            if len(sleeps) == 2:
                break
            assert time.monotonic() < deadline, processes()
            time.sleep(0.1)
        for pid in sleeps:
            parent = _parent_cmdline(pid)
            assert 'AnsiballZ' not in parent and 'python' in parent, parent
    finally:
        for pid, (_, cmd) in processes().items():
            if marker in cmd:
                os.kill(pid, 9)
