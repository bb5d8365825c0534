"""Unit tests of the benchmark suite's pure parts: recap parsing, checks, report cells."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report  # noqa: E402
from bench.runner import RunResult, check, parse_recap, parse_stalls  # noqa: E402
from bench.workloads import WORKLOADS  # noqa: E402

RECAP = '''
PLAY RECAP *********************************************************************
svcb0                      : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
svcb1                      : ok=1    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
'''


def test_parse_recap_and_check():
    recap = parse_recap('TASK [x] ok\n' + RECAP)
    assert recap['svcb0'] == {'ok': 2, 'changed': 1, 'unreachable': 0, 'failed': 0}
    assert check(0, {'svcb0': recap['svcb0']}, ['svcb0']) == ''
    assert 'unreachable=1' in check(0, recap, ['svcb0', 'svcb1'])
    assert check(2, recap, ['svcb0']) == 'rc=2'
    assert check(None, recap, ['svcb0']) == 'timed out'
    assert 'no PLAY RECAP' in check(0, {}, ['svcb0'])


def _run(mode, wall, ok=True, rnd=0):
    return RunResult('1host', 'loop100', mode, rnd, ok, wall, 1.0, 50.0, 0 if ok else 2)


def test_cell_median_fail_and_warmup():
    runs = [_run('svc', 9.0, rnd=-1), _run('svc', 1.0), _run('svc', 3.0, rnd=1), _run('svc', 2.0, rnd=2),
            _run('vanilla', 4.0), _run('vanilla', 4.0, ok=False, rnd=1)]
    assert report.cell(runs, '1host', 'loop100', 'svc') == 2.0
    assert report.cell(runs, '1host', 'loop100', 'vanilla') == report.FAIL
    assert report.cell(runs, '1host', 'loop100', 'floor') is None
    assert report._ratio(2.0, 4.0) == '0.50x'
    assert report._ratio(2.0, report.FAIL) == '–'


def test_floor_twin_has_as_many_debug_tasks(tmp_path):
    for name, expected in (('tasks100', 100), ('template20', 20), ('become20', 20), ('facts', 1)):
        text = WORKLOADS[name].playbook(tmp_path, floor=True).read_text()
        assert text.count('debug:') == expected, name
        assert 'gather_facts: false' in text
    loop = WORKLOADS['loop100'].playbook(tmp_path, floor=True).read_text()
    assert 'range(100)' in loop and loop.count('debug:') == 1


def test_stall_count_parsing_and_sum():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench' / 'callback_plugins'))
    import bench_stalls
    assert bench_stalls.delta_seconds('0:00:01.004512') == 1.004512
    assert bench_stalls.delta_seconds(None) is None and bench_stalls.delta_seconds('junk') is None
    assert bench_stalls.is_stall({'delta': '0:00:01.002000'})
    # Fast commands, and a real 2 s command (async20's sleep 2), are not stalls.
    assert not bench_stalls.is_stall({'delta': '0:00:00.004000'})
    assert not bench_stalls.is_stall({'delta': '0:00:02.003000'}) and not bench_stalls.is_stall({})

    assert parse_stalls('PLAY RECAP\n...\nBENCH run_command stalls 3\n') == 3
    assert parse_stalls('PLAY RECAP\n') is None
    runs = [_run('svc', 1.0), _run('svc', 1.0, rnd=1), _run('svc', 1.0, rnd=-1), _run('vanilla', 1.0)]
    runs[0].stalls, runs[1].stalls, runs[2].stalls = 2, 1, 5
    assert report.stall_sum(runs, '1host', 'loop100', 'svc') == 3.0  # the warm-up does not count
    assert report.stall_sum(runs, '1host', 'loop100', 'vanilla') is None


def test_merge_keeps_other_topologies(tmp_path):
    import json
    old = _run('svc', 4.0)
    previous = {'facts': {'date': 'then', 'git_commit': 'abc'}, 'command': 'python -m bench --topologies 1host',
                'runs': 3, 'warmup': 1, 'modes': ['svc'], 'workloads': ['loop100'],
                'topologies': [{'name': '1host', 'skipped': '', 'description': 'one host'},
                               {'name': '10hosts', 'skipped': '', 'description': 'ten hosts'}],
                'results': [old.to_json(), {**_run('svc', 9.0).to_json(), 'topology': '10hosts'}]}
    (tmp_path / 'latest.json').write_text(json.dumps(previous))
    meta = {'modes': ['svc', 'floor'], 'workloads': ['tasks100'],
            'topologies': [{'name': '10hosts', 'skipped': '', 'description': 'ten hosts, new'}]}
    runs = [RunResult('10hosts', 'tasks100', 'svc', 0, True, 7.0, 1.0, 50.0, 0)]
    report.merge_previous(tmp_path, meta, runs)
    # 1host comes back, with what it was measured with; 10hosts keeps its
    # earlier loop100 (not run now) beside the new tasks100.
    assert [t['name'] for t in meta['topologies']] == ['1host', '10hosts']
    assert meta['topologies'][0]['command'] == previous['command'] and meta['topologies'][0]['runs'] == 3
    assert [(r.topology, r.workload, r.wall) for r in runs] == [
        ('10hosts', 'tasks100', 7.0), ('1host', 'loop100', 4.0), ('10hosts', 'loop100', 9.0)]
    assert meta['workloads'] == ['loop100', 'tasks100'] and meta['modes'] == ['svc', 'floor']
    assert report.cell(runs, '1host', 'loop100', 'svc') == 4.0


def test_merge_keeps_the_workloads_not_run_now_with_what_measured_them(tmp_path):
    import json
    first = {'facts': {'date': 'monday', 'git_commit': 'aaa'}, 'command': 'python -m bench --topologies 10hosts',
             'runs': 3, 'warmup': 1, 'modes': ['vanilla', 'svc'], 'workloads': ['loop100', 'tasks100', 'bigcopy'],
             'topologies': [{'name': '10hosts', 'skipped': '', 'description': 'ten hosts', 'date': 'monday',
                             'git_commit': 'aaa', 'command': 'python -m bench --topologies 10hosts',
                             'runs': 3, 'warmup': 1}],
             # interrupted before bigcopy: no results for it
             'results': [{**RunResult('10hosts', w, m, 0, True, 5.0, 1.0, 50.0, 0).to_json()}
                         for w in ('loop100', 'tasks100') for m in ('vanilla', 'svc')]}
    (tmp_path / 'latest.json').write_text(json.dumps(first))
    second = {'modes': ['svc', 'floor'], 'workloads': ['bigcopy'],
              'topologies': [{'name': '10hosts', 'skipped': '', 'description': 'ten hosts', 'date': 'tuesday',
                              'git_commit': 'bbb', 'command': 'python -m bench --workloads bigcopy',
                              'runs': 1, 'warmup': 0}]}
    runs = [RunResult('10hosts', 'bigcopy', 'svc', 0, True, 9.0, 1.0, 50.0, 0)]
    report.merge_previous(tmp_path, second, runs)
    assert second['workloads'] == ['loop100', 'tasks100', 'bigcopy']  # catalogue order
    assert second['modes'] == ['svc', 'floor', 'vanilla']
    assert second['topologies'][0]['parts'] == [{'workloads': ['loop100', 'tasks100'], 'date': 'monday',
                                                  'git_commit': 'aaa', 'command': first['command'],
                                                  'runs': 3, 'warmup': 1}]
    assert report.cell(runs, '10hosts', 'tasks100', 'vanilla') == 5.0
    assert report.cell(runs, '10hosts', 'bigcopy', 'svc') == 9.0
    text = report.markdown({**second, 'facts': {**first['facts'], **{k: '-' for k in (
        'ansible_svc', 'ansible_core', 'mitogen', 'python', 'cores', 'cpu_model', 'memory_gib', 'os', 'kernel',
        'target_note')}}, 'command': 'x', 'runs': 1, 'warmup': 0}, runs)
    assert 'at git bbb' in text and 'Kept from an earlier run for loop100, tasks100: measured on monday at git aaa' in text

    # A third run of other workloads keeps both parts, each with its own.
    (tmp_path / 'latest.json').write_text(json.dumps({**second, 'facts': {'date': 'tuesday', 'git_commit': 'bbb'},
                                                      'command': 'x', 'results': [r.to_json() for r in runs]}))
    third = {'modes': ['svc'], 'workloads': ['facts'],
             'topologies': [{'name': '10hosts', 'skipped': '', 'description': 'ten hosts', 'date': 'wednesday',
                             'git_commit': 'ccc', 'command': 'python -m bench --workloads facts',
                             'runs': 3, 'warmup': 1}]}
    runs3 = [RunResult('10hosts', 'facts', 'svc', 0, True, 2.0, 1.0, 50.0, 0)]
    report.merge_previous(tmp_path, third, runs3)
    parts = third['topologies'][0]['parts']
    assert [(p['workloads'], p['git_commit']) for p in parts] == [(['bigcopy'], 'bbb'), (['loop100', 'tasks100'], 'aaa')]
    assert third['workloads'] == ['loop100', 'tasks100', 'bigcopy', 'facts']


def test_memory_sampler_finds_the_controller_mux_and_target_interpreters():
    """Peaks by role, from the command lines the modes really have; a mux
    outside the run's process tree (another run's) does not count."""
    import os
    import signal
    import subprocess

    from bench import runner
    # Each child says "ready" once its bytes are touched (resident): the test
    # samples after that event, not after a guess at how long allocation takes.
    script = ('import sys, time; x = b"\\x01" * (int(sys.argv[1]) << 20); '
              'print("ready", flush=True); time.sleep(60)')
    # The controller stand-in starts its own mux stand-in, as the strategy does.
    controller = ('import subprocess, sys, time; x = b"\\x01" * (20 << 20); '
                  'p = subprocess.Popen([sys.executable, "-c", sys.argv[1], "40", "-mansible_svc.mux"]); '
                  'time.sleep(60)')
    procs = [subprocess.Popen([sys.executable, '-c', controller, script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)]
    procs += [subprocess.Popen([sys.executable, '-c', script, str(mib), marker], stdout=subprocess.PIPE, text=True)
              for mib, marker in ((60, '/usr/bin/python3(mitogen:ansible-svc)'), (80, '-mansible_svc.mux'))]
    try:
        for p in procs:  # bounded: a child that dies gives EOF, and the line check fails
            assert p.stdout.readline().strip() == 'ready'
        sampler = runner.MemorySampler(procs[0].pid)  # stands in for ansible-playbook
        sampler.sample()
    finally:
        os.killpg(procs[0].pid, signal.SIGKILL)  # the controller stand-in and its mux
        for p in procs:
            p.kill()
            p.wait()
    peaks = sampler.peaks
    assert 40 <= peaks['mux'] < 60, peaks
    assert 60 <= peaks['target'] < 80, peaks
    assert 20 <= peaks['controller'] < 40, peaks


def test_bigcopy_copies_one_huge_file(tmp_path, monkeypatch):
    from bench import workloads
    monkeypatch.setattr(workloads, 'HUGE_FILE_MIB', 2)
    text = WORKLOADS['bigcopy'].playbook(tmp_path, floor=False).read_text()
    assert text.count('copy:') == 1 and 'huge2m.bin' in text
    assert (tmp_path / 'files' / 'huge2m.bin').stat().st_size == 2 << 20
    assert WORKLOADS['bigcopy'].playbook(tmp_path, floor=True).read_text().count('debug:') == 1
