"""The identity parity matrix: every way a playbook can change who and where
a task runs, compared with vanilla task by task and item by item.

A table of identities (host name, account, become method, user, flags and
exe, become password right/wrong/missing, interpreter, private key,
environment) is
applied in sequence at every level a playbook can set them: task vars, loop
items, blocks, ``include_tasks`` in a loop, task and play keywords
(``remote_user``, ``become``...), inventory aliases of one host, and
``delegate_to`` them (per task and per loop item). One playbook holds it
all; it runs once with vanilla ``linear`` and once with ``svc_linear``, and
each probe's effective user, uid, gid, groups, interpreter, ``sys.prefix``,
cwd, home and environment (or its failure) must be the same.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from helpers import run_playbook

pytestmark = pytest.mark.newest_core_only

LIBRARY = Path(__file__).resolve().parent / 'library'
RIGHT, WRONG = 'svc-pw-secret', 'wrong-Secret-4711'
#: What a probe reports and the two runs must agree on.
FACTS = ('user', 'uid', 'gid', 'groups', 'executable', 'prefix', 'cwd', 'home', 'env')

#: Every identity, as the settings that differ from BASE.
IDENTITIES = {
    'login': {},
    'become': {'ansible_become': True},
    'become_target': {'ansible_become': True, 'ansible_become_user': 'svc-target'},
    'root': {'ansible_user': 'root'},
    'root_become_target': {'ansible_user': 'root', 'ansible_become': True, 'ansible_become_user': 'svc-target'},
    'py311': {'ansible_python_interpreter': '/usr/bin/python3.11'},
    'venv': {'ansible_python_interpreter': '{venv}/bin/python'},
    'venv_become': {'ansible_python_interpreter': '{venv}/bin/python', 'ansible_become': True},
    'pw_login': {'ansible_user': 'svc-pw'},
    'pw_right': {'ansible_user': 'svc-pw', 'ansible_become': True, 'ansible_become_password': RIGHT},
    'pw_wrong': {'ansible_user': 'svc-pw', 'ansible_become': True, 'ansible_become_password': WRONG},
    'pw_missing': {'ansible_user': 'svc-pw', 'ansible_become': True},
    'flags': {'ansible_become': True, 'ansible_become_flags': '-S -n'},
    'sudo_exe': {'ansible_become': True, 'ansible_become_exe': '/usr/bin/sudo'},
    'root_su_target': {'ansible_user': 'root', 'ansible_become': True, 'ansible_become_method': 'su',
                       'ansible_become_user': 'svc-target', 'ansible_become_flags': ''},
    'host_name': {'ansible_host': 'localhost'},
    'key_copy': {'ansible_ssh_private_key_file': '{key_copy}'},
    'env': {'env': 'other'},
}

#: The order identities follow at each level: every change of setting, and
#: back, including a wrong and a missing password right after a right one.
SEQUENCE = ['login', 'become', 'become_target', 'become', 'root', 'root_become_target', 'login', 'py311',
            'venv', 'venv_become', 'login', 'pw_login', 'pw_right', 'pw_wrong', 'pw_right', 'pw_missing', 'flags',
            'become', 'sudo_exe', 'root_su_target', 'become_target', 'host_name', 'key_copy', 'env', 'login']
#: Shorter sequences where each step costs a play or an inventory alias.
PLAYS = ['login', 'root', 'become_target', 'become', 'login']
ALIASES = ['login', 'root', 'become_target', 'venv', 'pw_login', 'pw_right', 'pw_wrong', 'py311', 'root_su_target',
           'host_name']
#: Settings that have a play/task keyword, and its name.
KEYWORDS = {'ansible_user': 'remote_user', 'ansible_become': 'become', 'ansible_become_user': 'become_user',
            'ansible_become_flags': 'become_flags', 'ansible_become_method': 'become_method',
            'ansible_become_exe': 'become_exe'}


def settings(name: str, paths: dict) -> dict:
    # An empty become_exe means the method's own command, for vanilla and us.
    base = {'ansible_host': '127.0.0.1', 'ansible_user': 'svc-login', 'ansible_become': False,
            'ansible_become_method': 'sudo', 'ansible_become_user': 'root', 'ansible_become_exe': '',
            'ansible_become_flags': '-H -S -n', 'ansible_python_interpreter': '/usr/bin/python3',
            'ansible_become_password': '', 'ansible_ssh_private_key_file': paths['key'], 'env': 'base'}
    base.update({k: v.format(**paths) if isinstance(v, str) else v for k, v in IDENTITIES[name].items()})
    return base


def as_vars(ident: dict) -> dict:
    return {k: v for k, v in ident.items() if k != 'env'}


def probe(name: str, **keys) -> dict:
    return dict({'name': name, 'svc_identity': {'env_names': ['SVC_PROBE']}, 'ignore_errors': True}, **keys)


def templated(var: str) -> dict:
    """Task keys taking every setting from the loop variable `var`."""
    return {'vars': {k: '{{ %s.%s }}' % (var, k) for k in settings('login', {'key': ''}) if k != 'env'},
            'environment': {'SVC_PROBE': '{{ %s.env }}' % var}}


def build(tmp: Path, paths: dict) -> tuple[str, str]:
    """(playbook, inventory) of the whole matrix; writes the included file."""
    seq = [settings(n, paths) for n in SEQUENCE]
    (tmp / 'probe_include.yml').write_text(yaml.safe_dump([probe('include probe', **templated('ident'))]))
    tasks = []
    for i, (name, ident) in enumerate(zip(SEQUENCE, seq)):
        tasks.append(probe(f'task vars {i} {name}', vars=as_vars(ident), environment={'SVC_PROBE': ident['env']}))
    tasks.append(probe('loop items', loop=seq, **templated('item')))
    for i, (name, ident) in enumerate(zip(SEQUENCE, seq)):
        tasks.append({'name': f'block {i} {name}', 'vars': as_vars(ident), 'environment': {'SVC_PROBE': ident['env']},
                      'block': [probe(f'block {i} {name} probe')]})
    tasks.append({'name': 'include in a loop', 'include_tasks': 'probe_include.yml', 'loop': seq,
                  'loop_control': {'loop_var': 'ident'}})
    for i, (name, ident) in enumerate(zip(SEQUENCE, seq)):
        keys = {KEYWORDS[k]: v for k, v in ident.items() if k in KEYWORDS}
        rest = {k: v for k, v in as_vars(ident).items() if k not in KEYWORDS}
        tasks.append(probe(f'task keywords {i} {name}', vars=rest, environment={'SVC_PROBE': ident['env']}, **keys))
    for alias in ALIASES:
        tasks.append(probe(f'delegate_to a_{alias}', delegate_to=f'a_{alias}'))
    tasks.append(probe('delegate_to per item', delegate_to='{{ item }}', loop=[f'a_{a}' for a in ALIASES]))

    plays = [{'name': 'levels', 'hosts': 'm', 'gather_facts': False, 'tasks': tasks}]
    for i, name in enumerate(PLAYS):
        ident = settings(name, paths)
        keys = {KEYWORDS[k]: v for k, v in ident.items() if k in KEYWORDS}
        plays.append(dict({'name': f'play {i} {name}', 'hosts': 'm', 'gather_facts': False,
                           'tasks': [probe(f'play keywords {i} {name}')]}, **keys))
    plays.append({'name': 'aliases', 'hosts': 'aliases', 'gather_facts': False, 'tasks': [probe('inventory alias')]})

    known_hosts = tmp / 'known_hosts'
    entry = Path(paths['known_hosts']).read_text().split(' ', 1)[1]
    known_hosts.write_text(''.join(f"[{name}]:{paths['port']} {entry}" for name in ('127.0.0.1', 'localhost')))
    common = f"ansible_port={paths['port']} ansible_ssh_common_args='-o UserKnownHostsFile={known_hosts}'"

    lines = ['[matrix]', f"m ansible_host=127.0.0.1 {common} ansible_ssh_private_key_file={paths['key']} "
                         f"ansible_python_interpreter=/usr/bin/python3", '[aliases]']
    for alias in ALIASES:
        values = ' '.join(f"{k}='{v}'" for k, v in as_vars(settings(alias, paths)).items() if v != '')
        lines.append(f'a_{alias} {common} {values}')
    return yaml.safe_dump(plays, sort_keys=False), '\n'.join(lines) + '\n'


def observations(run) -> dict:
    """{(play, task, host, item index, occurrence): (status, facts)} of
    every probe."""
    seen = {}
    for record in run.results:
        if record['action'] != 'svc_identity':
            continue
        result = record['result']
        if 'results' in result:
            # A failed item has no probe facts (2.21 may not mark it failed).
            outcomes = [(item, 'unreachable' if item.get('unreachable') else
                         'failed' if item.get('failed') or 'user' not in item else 'ok')
                        for item in result['results']]
        else:
            outcomes = [(result, record['status'])]
        for i, (outcome, state) in enumerate(outcomes):
            facts = tuple(fact(outcome, k) for k in FACTS)
            # Tasks of an include in a loop share their name: number them.
            key = (record['play'], record['task'], record['host'], i, 0)
            while key in seen:
                key = key[:4] + (key[4] + 1,)
            seen[key] = (state, facts if state == 'ok' else None)
    return seen


def fact(outcome: dict, name: str):
    value = outcome.get(name)
    if name == 'groups':
        return tuple(value or ())
    if name == 'cwd' and value:
        # AnsibleModule moves to a fresh temp dir when it cannot read its cwd.
        return re.sub(r'ansible-moduletmp-[^/]+', 'ansible-moduletmp-*', value)
    return value


@pytest.fixture
def matrix_paths(ssh_env):
    """A venv and a copy of the client key that the test users can reach."""
    top = Path(tempfile.mkdtemp(prefix='svc-matrix-', dir='/tmp'))
    os.chmod(top, 0o755)
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--without-pip', str(top / 'venv')], check=True)
    key_copy = top / 'key_copy'
    shutil.copy(ssh_env['key'], key_copy)
    key_copy.chmod(0o600)
    yield {'venv': str(top / 'venv'), 'key_copy': str(key_copy), 'key': ssh_env['key'],
           'port': ssh_env['port'], 'known_hosts': ssh_env['known_hosts']}
    shutil.rmtree(top, ignore_errors=True)


def test_identity_matrix_matches_vanilla(tmp_path, sshd_alive, ssh_env, matrix_paths):
    runs = {}
    for strategy in ('linear', 'svc_linear'):
        workdir = tmp_path / strategy
        workdir.mkdir()
        playbook, inventory = build(workdir, matrix_paths)
        runs[strategy] = run_playbook(playbook, tmp_path=workdir, inventory=inventory, strategy=strategy,
                                      env={'ANSIBLE_LIBRARY': str(LIBRARY), 'ANSIBLE_REMOTE_USER': 'svc-login'},
                                      timeout=600)
        assert runs[strategy].rc == 0, runs[strategy].output
    van, svc = observations(runs['linear']), observations(runs['svc_linear'])
    assert sorted(van) == sorted(svc)
    diffs = [f'{key}:\n  vanilla: {van[key]}\n  svc:     {svc[key]}' for key in sorted(van) if van[key] != svc[key]]
    assert not diffs, f'{len(diffs)} of {len(van)} probes differ from vanilla:\n' + '\n'.join(diffs)
    # The matrix really moves: many accounts, interpreters and outcomes.
    states = {state for state, _ in van.values()}
    users = {facts[0] for _, facts in van.values() if facts}
    prefixes = {facts[5] for _, facts in van.values() if facts}
    assert states == {'ok', 'failed'} and users == {'svc-login', 'root', 'svc-target', 'svc-pw'}, (states, users)
    assert prefixes == {'/usr', matrix_paths['venv']}, prefixes
    print(f'identity matrix: {len(van)} probes compared')
