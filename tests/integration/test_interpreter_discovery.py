"""Behaviour parity for Python interpreter selection and discovery.

Vanilla `linear` and `svc_linear` run the same playbook; for every way of
setting `ansible_python_interpreter` the task results, the discovered
interpreter fact (`ansible_facts.discovered_interpreter_python`) and the
warnings Ansible prints must match.

Each setting gets its own inventory host, so one run per strategy covers
them all: `t_<case>` are aliases of the ssh target, `l_<case>` are local.
Every host runs its own discovery (the discovered interpreter is a per-host
fact), and vanilla warns per host.

The controller's PATH may hold pyenv shims for Pythons that are not selected
(a shim for python3.13 that only prints an error); discovery on `local`
would pick those. The runs here use a system PATH, the same for both
strategies.
"""
from __future__ import annotations

import inspect
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from ansible.executor import interpreter_discovery

from helpers import assert_same_results, run_playbook

LIBRARY = Path(__file__).resolve().parent / 'library'
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
STRATEGIES = ('linear', 'svc_linear')

#: Whether the installed core still has the auto_legacy discovery modes
#: (deprecated in 2.19 and 2.20, removed in 2.21), read from its source.
LEGACY_MODES = 'auto_legacy' in Path(inspect.getsourcefile(interpreter_discovery)).read_text()

#: case -> INI value of ansible_python_interpreter (None: not set at all).
DISCOVERY_CASES = {
    'unset': None,
    'auto': 'auto',
    'auto_silent': 'auto_silent',
    **({'auto_legacy': 'auto_legacy', 'auto_legacy_silent': 'auto_legacy_silent'} if LEGACY_MODES else {}),
    'explicit': '/usr/bin/python3',
    'templated': '"{{ \'/usr/bin/\' ~ \'python3\' }}"',
}

#: Interpreters given with arguments (a command line, not a path).
ARGUMENT_CASES = {
    'env': "'/usr/bin/env python3'",
    'args_E': "'/usr/bin/python3 -E'",
    'args_X_utf8': "'/usr/bin/python3 -X utf8'",
}

#: Cases where vanilla runs discovery (and records the fact).
DISCOVERING = tuple(case for case in ('unset', 'auto', 'auto_silent', 'auto_legacy', 'auto_legacy_silent') if case in DISCOVERY_CASES)


def _ssh_vars(ssh_env: dict) -> str:
    return ' '.join([
        f"ansible_host={ssh_env['host']}",
        f"ansible_port={ssh_env['port']}",
        'ansible_user=svc-login',
        f"ansible_ssh_private_key_file={ssh_env['key']}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={ssh_env['known_hosts']}'",
    ])


def alias_inventory(ssh_env: dict, cases: dict) -> str:
    """One `t_<case>` (ssh) and one `l_<case>` (local) host per case."""
    lines = ['[all]']
    for prefix, conn in (('t', _ssh_vars(ssh_env)), ('l', 'ansible_connection=local')):
        for case, value in cases.items():
            interp = '' if value is None else f' ansible_python_interpreter={value}'
            lines.append(f'{prefix}_{case} {conn}{interp}')
    return '\n'.join(lines) + '\n'


def hosts_of(cases) -> list[str]:
    return [f'{p}_{c}' for p in ('t', 'l') for c in cases]


def run_both(playbook: str, tmp_path: Path, inventory: str, args=(), env=None) -> dict:
    env = dict({'PATH': SYSTEM_PATH, 'ANSIBLE_LIBRARY': str(LIBRARY)}, **(env or {}))
    return {s: run_playbook(playbook, tmp_path=tmp_path / s, strategy=s, inventory=inventory,
                            env=env, args=list(args)) for s in STRATEGIES}


# --- warnings -----------------------------------------------------------------

#: Printed only because svc_linear is a third-party strategy plugin, and the
#: hint that comes with the first deprecation of a run.
_NOT_COMPARED = ('Use of strategy plugins not included in ansible.builtin',
                 'Deprecation warnings can be disabled')

_WARNING_START = re.compile(r'^\[(WARNING|DEPRECATION WARNING)\]: ')


def warnings_of(result) -> Counter:
    """Every [WARNING]/[DEPRECATION WARNING] message of a run (stdout and
    stderr, continuation lines joined), as a multiset."""
    found = []
    for stream in (result.stdout, result.stderr):
        current = None
        for line in stream.splitlines():
            if _WARNING_START.match(line):
                if current is not None:
                    found.append(current)
                current = line.strip()
            elif current is not None and line.strip() and not line.startswith(('[', 'TASK ', 'PLAY ', 'ok:', 'changed:', 'fatal:', 'skipping:')):
                current += ' ' + line.strip()
            else:
                if current is not None:
                    found.append(current)
                current = None
        if current is not None:
            found.append(current)
    return Counter(w for w in found if not any(n in w for n in _NOT_COMPARED))


def discovery_warning(host: str) -> re.Pattern:
    return re.compile(rf"Host '{re.escape(host)}' is using the discovered Python interpreter at '([^']+)'")


# --- discovery modes ------------------------------------------------------------

DISCOVERY_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: first module
      svc_kind_new: msg=first
    - name: command
      command: echo hi
    - name: ping
      ping:
    - name: discovered fact
      debug:
        msg: "{{ ansible_facts.discovered_interpreter_python | default('UNSET') }}"
    - name: second module
      svc_kind_new: msg=second
"""


@pytest.fixture(scope='module')
def discovery_runs(ssh_env, sshd_alive, tmp_path_factory):
    base = tmp_path_factory.mktemp('discovery')
    runs = run_both(DISCOVERY_PLAYBOOK, base, alias_inventory(ssh_env, DISCOVERY_CASES), args=['-f', '8'])
    return runs


def test_vanilla_discovery_is_sane(discovery_runs):
    r = discovery_runs['linear'].assert_ok()
    for host in hosts_of(DISCOVERY_CASES):
        case = host[2:]
        res = r.task('first module', host)['result']
        assert res['python_version'][0] == 3, res
        fact = r.task('discovered fact', host)['result']['msg']
        if case in DISCOVERING:
            assert res['ansible_facts']['discovered_interpreter_python'].startswith('/'), res
            assert fact == res['ansible_facts']['discovered_interpreter_python']
        else:
            assert 'ansible_facts' not in res, res
            assert fact == 'UNSET'


def test_svc_discovery_run_succeeds(discovery_runs):
    r = discovery_runs['svc_linear']
    r.assert_ok()
    for host in hosts_of(DISCOVERY_CASES):
        assert r.stats[host]['failures'] == 0 and r.stats[host]['unreachable'] == 0, r.output


def test_discovery_results_match_vanilla(discovery_runs):
    # utf8_mode differs for a reason unrelated to discovery; it is compared in
    # test_module_kinds.py::test_new_style_python_flags_match_vanilla.
    assert_same_results(discovery_runs['linear'], discovery_runs['svc_linear'], drop={'utf8_mode'})


@pytest.mark.parametrize('case', list(DISCOVERY_CASES))
def test_discovered_interpreter_fact_matches_vanilla(discovery_runs, case):
    got = {}
    for strategy, r in discovery_runs.items():
        got[strategy] = {}
        for host in (f't_{case}', f'l_{case}'):
            first = r.task('first module', host)['result']
            second = r.task('second module', host)['result']
            got[strategy][host] = {
                'first task fact': (first.get('ansible_facts') or {}).get('discovered_interpreter_python'),
                'second task fact': (second.get('ansible_facts') or {}).get('discovered_interpreter_python'),
                'host fact': r.task('discovered fact', host)['result']['msg'],
                'module python': first['python_real'],
            }
    assert got['svc_linear'] == got['linear'], json.dumps(got, indent=1, sort_keys=True)


@pytest.mark.parametrize('case', list(DISCOVERY_CASES))
def test_discovery_warnings_match_vanilla(discovery_runs, case):
    got = {}
    for strategy, r in discovery_runs.items():
        warnings = warnings_of(r)
        got[strategy] = {host: sorted(w for w in warnings.elements() if discovery_warning(host).search(w))
                         for host in (f't_{case}', f'l_{case}')}
    if case in ('unset', 'auto', 'auto_legacy'):
        assert all(len(v) == 1 for v in got['linear'].values()), got
    else:
        assert all(v == [] for v in got['linear'].values()), got
    assert got['svc_linear'] == got['linear'], json.dumps(got, indent=1, sort_keys=True)


def test_all_warnings_match_vanilla(discovery_runs):
    # Includes the auto_legacy deprecations (up to 2.20), printed once per run.
    van, svc = (warnings_of(discovery_runs[s]) for s in STRATEGIES)
    if LEGACY_MODES:
        assert any("'auto_legacy' option for 'INTERPRETER_PYTHON'" in w for w in van), van
        assert any("'auto_legacy_silent' option for 'INTERPRETER_PYTHON'" in w for w in van), van
    assert svc == van, f'only vanilla: {sorted((van - svc).elements())}\nonly svc: {sorted((svc - van).elements())}'


# --- interpreters given with arguments ------------------------------------------

ARGUMENTS_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: module
      svc_kind_new: msg=args
    - name: command
      command: echo hi
"""


@pytest.fixture(scope='module')
def argument_runs(ssh_env, sshd_alive, tmp_path_factory):
    base = tmp_path_factory.mktemp('interp-args')
    return run_both(ARGUMENTS_PLAYBOOK, base, alias_inventory(ssh_env, ARGUMENT_CASES), args=['-f', '6'])


@pytest.mark.parametrize('case', list(ARGUMENT_CASES))
def test_interpreter_with_arguments_matches_vanilla(argument_runs, case):
    """`ansible_python_interpreter` with arguments: whatever vanilla does with
    it (ansible-core 2.19 shell-quotes the whole value as one word), svc must
    do the same."""
    hosts = (f't_{case}', f'l_{case}')
    got = {}
    for strategy, r in argument_runs.items():
        got[strategy] = {}
        for host in hosts:
            res = r.task('module', host)
            got[strategy][host] = {
                'status': res['status'],
                'msg': res['result'].get('msg'),
                'rc': res['result'].get('rc'),
                'module_stderr': res['result'].get('module_stderr'),
                'flags': {k: res['result'].get(k) for k in ('ignore_environment', 'utf8_mode')},
                'later tasks': [t['status'] for t in r.results if t['host'] == host and t['task'] != 'module'],
            }
    assert got['svc_linear'] == got['linear'], json.dumps(got, indent=1, sort_keys=True)


# --- an interpreter that does not exist ------------------------------------------

MISSING_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ping with missing interpreter
      ping:
    - name: command after the failure
      command: echo after
"""


def test_missing_interpreter_fails_like_vanilla(ssh_env, sshd_alive, tmp_path):
    inv = alias_inventory(ssh_env, {'missing': '/nonexistent/svc-python3'})
    runs = run_both(MISSING_PLAYBOOK, tmp_path, inv)
    van = runs['linear']
    for host in ('t_missing', 'l_missing'):
        res = van.task('ping with missing interpreter', host)
        assert res['status'] == 'failed', res
        assert res['result']['rc'] == 127, res
        assert res['result']['msg'] == "The module interpreter '/nonexistent/svc-python3' was not found.", res
        assert van.tasks('command after the failure', host) == []
    got = {}
    for strategy, r in runs.items():
        got[strategy] = {}
        for host in ('t_missing', 'l_missing'):
            res = r.task('ping with missing interpreter', host)
            got[strategy][host] = {'status': res['status'], 'rc': res['result'].get('rc'),
                                   'msg': res['result'].get('msg'),
                                   'unreachable': res['result'].get('unreachable', False),
                                   'stats': {k: r.stats[host][k] for k in ('ok', 'failures', 'unreachable')}}
    assert got['svc_linear'] == got['linear'], json.dumps(got, indent=1, sort_keys=True)
    assert runs['svc_linear'].rc == van.rc


# --- discovery round trips ----------------------------------------------------

ROUND_TRIP_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ping 1
      ping:
    - name: command
      command: echo hi
    - name: module
      svc_kind_new: msg=x
    - name: shell
      shell: echo there
    - name: ping 2
      ping:
    - name: file
      file: path=/tmp state=directory
"""

#: -vvv prints `<addr> ...EXEC ...` for every command a connection runs;
#: vanilla labels `local` as <local>, svc_local as <localhost>.
HOST_LABELS = {'target': ('<127.0.0.1>',), 'local': ('<local>', '<localhost>')}


def discovery_commands(result) -> dict:
    """How many times the discovery shell command ran, per host."""
    counts = {host: 0 for host in HOST_LABELS}
    for line in result.stdout.splitlines():
        if 'EXEC' in line and 'echo FOUND' in line and 'command -v' in line and 'echo ENDFOUND' in line:
            for host, labels in HOST_LABELS.items():
                if line.startswith(labels):
                    counts[host] += 1
    return counts


def test_discovery_runs_at_most_once_per_host(ssh_env, sshd_alive, tmp_path):
    # ansible_python_interpreter unset on both hosts.
    inv = '\n'.join(['[all]', f"target {_ssh_vars(ssh_env)}", 'local ansible_connection=local', ''])
    runs = run_both(ROUND_TRIP_PLAYBOOK, tmp_path, inv, args=['-vvv'])
    counts = {}
    for strategy, r in runs.items():
        r.assert_ok()
        counts[strategy] = discovery_commands(r)
        for host in HOST_LABELS:
            fact = r.task('ping 1', host)['result']['ansible_facts']['discovered_interpreter_python']
            assert fact.startswith('/'), (strategy, host, fact)
    # Vanilla runs discovery exactly once per host and caches the result.
    assert counts['linear'] == {'target': 1, 'local': 1}, counts
    for host, n in counts['svc_linear'].items():
        assert n >= 1, f'discovery command not seen in -vvv output of svc_linear for {host}: the count proves nothing'
        assert n <= 1, f'svc_linear ran discovery {n} times on {host}: {counts}'
    assert_same_results(runs['linear'], runs['svc_linear'], drop={'utf8_mode'})
