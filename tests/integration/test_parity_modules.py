"""Behaviour parity: the same playbook under vanilla `linear` and `svc_linear`.

One playbook exercises many modules on both the ssh host (`target`) and the
controller (`local`); it runs once per strategy, and the per-task results
must match after clock fields are dropped. Extra assertions check what the
modules did (checksums on the target, fetched files, facts).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import uuid
from pathlib import Path

import pytest

from helpers import assert_same_results, inventory_for, normalize, run_playbook

UNI_NAME = 'fïlé [1] "dq" \'sq\' ü.txt'
UNI_CONTENT = 'Grüße, 世界 [x] "dq" \'sq\'\nzweite Zeile ✓\n'
SECRET = 'svc-very-secret-7f3a9'

PARITY_PLAYBOOK = r"""
- hosts: all
  gather_facts: true
  vars:
    ws: "{{ ws_root }}/{{ inventory_hostname }}"
  tasks:
    - name: reset ws
      file: path="{{ ws }}" state=absent
    - name: make ws
      file: path="{{ ws }}" state=directory mode="0755"
    - name: ping
      ping:
    - name: ping data
      ping: data="pöng"
    - name: command
      command: echo hello wörld
    - name: command argv
      command:
        argv: [printf, "%s|", "a b", "ü", "[x]"]
    - name: command stdin
      command: cat
      args:
        stdin: "line1\nzwei ü"
    - name: command chdir
      command: pwd
      args:
        chdir: "{{ ws }}"
    - name: shell env and failed_when
      shell: echo "$SVC_VAR" | tr a-z A-Z; echo to-stderr >&2; exit 3
      environment:
        SVC_VAR: "from env ü"
      register: sh
      failed_when: sh.rc != 3
    - name: pwd default
      command: pwd
    - name: shell PWD default
      shell: echo "$PWD"
    - name: shell changed_when
      shell: echo unchanged
      changed_when: false
    - name: shell failed_when true
      shell: echo fine
      failed_when: "'fine' in sh2.stdout"
      register: sh2
      ignore_errors: true
    - name: file touch
      file: path="{{ ws }}/touched" state=touch mode="0640"
    - name: file stat after touch
      stat: path="{{ ws }}/touched"
    - name: copy content unicode
      copy: content="{{ uni_content }}" dest="{{ ws }}/{{ uni_name }}" mode="0644"
    - name: copy content unicode again
      copy: content="{{ uni_content }}" dest="{{ ws }}/{{ uni_name }}" mode="0644"
    - name: copy empty
      copy: src="{{ src_dir }}/empty.bin" dest="{{ ws }}/empty.bin"
    - name: copy one byte
      copy: src="{{ src_dir }}/one.bin" dest="{{ ws }}/one.bin"
    - name: copy big
      copy: src="{{ src_dir }}/big.bin" dest="{{ ws }}/big.bin"
    - name: copy big again
      copy: src="{{ src_dir }}/big.bin" dest="{{ ws }}/big.bin"
    - name: copy unicode src
      copy: src="{{ src_dir }}/{{ uni_name }}" dest="{{ ws }}/src-{{ uni_name }}"
    - name: stat files
      stat:
        path: "{{ ws }}/{{ item }}"
        checksum_algorithm: sha1
      loop:
        - empty.bin
        - one.bin
        - big.bin
        - "{{ uni_name }}"
        - "src-{{ uni_name }}"
      register: st
    - name: template
      template: src="{{ src_dir }}/tmpl.j2" dest="{{ ws }}/tmpl.out"
    - name: slurp template
      slurp: src="{{ ws }}/tmpl.out"
    - name: lineinfile create
      lineinfile: path="{{ ws }}/lines.txt" line="key = ü value" create=true
    - name: lineinfile regexp
      lineinfile: path="{{ ws }}/lines.txt" regexp="^key" line="key = replaced"
    - name: lineinfile unchanged
      lineinfile: path="{{ ws }}/lines.txt" regexp="^key" line="key = replaced"
    - name: fetch unicode
      fetch: src="{{ ws }}/{{ uni_name }}" dest="{{ fetch_dir }}/{{ inventory_hostname }}/" flat=true
    - name: fetch big
      fetch: src="{{ ws }}/big.bin" dest="{{ fetch_dir }}/{{ inventory_hostname }}/big.bin" flat=true
    - name: raw unicode
      raw: "printf '%s\\n' 'rå ✓ [x]' 'zweite'"
    - name: loop register
      command: echo {{ item }}
      loop: [a, "b c", ü]
      register: looped
    - name: use loop results
      debug:
        msg: "{{ looped.results | map(attribute='stdout') | list }}"
    - name: failing command
      command: /bin/false
      ignore_errors: true
    - name: failing shell rc
      shell: echo out; echo err >&2; exit 7
      ignore_errors: true
    - name: file on bad path
      file: path=/nonexistent-svc-dir/sub/x state=touch
      ignore_errors: true
    - name: missing executable
      command: /nonexistent/svc-binary
      ignore_errors: true
    - name: no_log command
      command: echo {{ secret }}
      no_log: true
      register: hidden
    - name: no_log failing
      shell: echo {{ secret }}; exit 1
      no_log: true
      ignore_errors: true
    - name: secret was seen by the module
      assert:
        that: hidden.stdout == secret
    - name: stat big
      stat: path="{{ ws }}/big.bin"
      register: bigstat
"""

TEMPLATE = '# {{ ansible_managed | default("managed") }}\nhost={{ inventory_hostname }}\nü={{ uni_content | length }}\n'


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def parity_runs(ssh_env, sshd_alive, tmp_path_factory):
    """The parity playbook, run under linear then svc_linear, at -v."""
    base = tmp_path_factory.mktemp('parity')
    src = base / 'src'
    src.mkdir()
    (src / 'empty.bin').write_bytes(b'')
    (src / 'one.bin').write_bytes(b'\xff')
    rnd = random.Random(1234)
    (src / 'big.bin').write_bytes(rnd.randbytes(3 * 1024 * 1024 + 17))
    (src / UNI_NAME).write_text(UNI_CONTENT, encoding='utf-8')
    (src / 'tmpl.j2').write_text(TEMPLATE, encoding='utf-8')
    os.chmod(base, 0o755)
    ws_root = Path(f'/tmp/svc-parity-{uuid.uuid4().hex[:8]}')
    ws_root.mkdir(mode=0o777)
    os.chmod(ws_root, 0o1777)
    # One playbook file for both runs: on `local`, commands run in the
    # playbook's directory, which must then be the same.
    pb_file = base / 'playbook.yml'
    pb_file.write_text(PARITY_PLAYBOOK)
    runs = {}
    fetched = {}
    try:
        for strategy in ('linear', 'svc_linear'):
            fetch_dir = base / 'fetched'
            shutil.rmtree(fetch_dir, ignore_errors=True)
            for ws in ws_root.iterdir():
                shutil.rmtree(ws)
            extra = dict(ws_root=str(ws_root), src_dir=str(src), fetch_dir=str(fetch_dir),
                         uni_name=UNI_NAME, uni_content=UNI_CONTENT, secret=SECRET)
            runs[strategy] = run_playbook(pb_file, tmp_path=base / strategy, strategy=strategy,
                                          inventory=inventory_for(ssh_env), extra_vars=extra, args=['-v'],
                                          cwd=base)
            fetched[strategy] = {p.relative_to(fetch_dir).as_posix(): _sha1(p)
                                 for p in fetch_dir.rglob('*') if p.is_file()} if fetch_dir.exists() else {}
    finally:
        shutil.rmtree(ws_root, ignore_errors=True)
    return dict(runs=runs, fetched=fetched, src=src, cwd=base)


def test_vanilla_run_is_sane(parity_runs):
    # Guards the comparison: if vanilla itself failed, parity proves nothing.
    r = parity_runs['runs']['linear']
    r.assert_ok()
    assert r.task('command', 'target')['result']['stdout'] == 'hello wörld'


def test_svc_run_succeeds(parity_runs):
    r = parity_runs['runs']['svc_linear']
    r.assert_ok()
    for host in ('target', 'local'):
        assert r.stats[host]['failures'] == 0, r.output
        assert r.stats[host]['unreachable'] == 0, r.output


def test_svc_really_used_persistent_interpreter(parity_runs, ssh_env, sshd_alive, tmp_path):
    # The comparison is only meaningful if svc_linear did not silently run
    # vanilla: the module process must be a fork of a mitogen interpreter.
    pb = """
- hosts: all
  gather_facts: false
  tasks:
    - name: parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
"""
    svc = run_playbook(pb, tmp_path=tmp_path / 'svc', inventory=inventory_for(ssh_env)).assert_ok()
    van = run_playbook(pb, tmp_path=tmp_path / 'van', inventory=inventory_for(ssh_env), strategy='linear').assert_ok()
    for host in ('target', 'local'):
        assert 'mitogen:ansible-svc' in svc.task('parent', host)['result']['stdout'], svc.output
        assert 'mitogen' not in van.task('parent', host)['result']['stdout'], van.output


def test_same_results_as_vanilla(parity_runs):
    runs = parity_runs['runs']
    # `Gathering Facts` differs by nature (uptime, memory, ...); compared
    # key by key in test_facts_match.
    assert_same_results(runs['linear'], runs['svc_linear'], skip_tasks=('Gathering Facts',))


def test_local_modules_run_like_ansible_builtin_local(parity_runs):
    # ansible.builtin.local is not a "remote is local" connection: modules use
    # ansible_python_interpreter, the remote tmp is ~/.ansible/tmp, and the
    # working directory is the playbook's directory.
    runs = parity_runs['runs']
    want_cwd = str(parity_runs['cwd'])
    for strategy, r in runs.items():
        facts = r.task('Gathering Facts', 'local')['result']['ansible_facts']
        assert facts['ansible_python']['executable'] == '/usr/bin/python3', strategy
        src = r.task('copy one byte', 'local')['result']['src']
        assert src.startswith('/root/.ansible/tmp/ansible-tmp-'), (strategy, src)
        assert r.task('pwd default', 'local')['result']['stdout'] == want_cwd, strategy
        assert r.task('shell PWD default', 'local')['result']['stdout'] == want_cwd, strategy
        assert r.task('pwd default', 'target')['result']['stdout'] == '/home/svc-login', strategy


def test_facts_match(parity_runs):
    runs = parity_runs['runs']
    keys = [('ansible_hostname',), ('ansible_python', 'executable'), ('ansible_python_version',),
            ('ansible_user_id',), ('ansible_user_dir',), ('ansible_system',), ('ansible_fqdn',),
            ('ansible_env', 'HOME'), ('ansible_env', 'USER'), ('ansible_env', 'LOGNAME'),
            ('ansible_env', 'PATH'), ('ansible_env', 'PWD'), ('ansible_env', 'SHELL')]
    for host in ('target', 'local'):
        got = {}
        for strategy, r in runs.items():
            facts = r.task('Gathering Facts', host)['result']['ansible_facts']
            picked = {}
            for path in keys:
                value = facts
                for part in path:
                    value = value.get(part) if isinstance(value, dict) else None
                picked['.'.join(path)] = value
            got[strategy] = picked
        assert got['svc_linear']['ansible_hostname'], got
        assert got['svc_linear'] == got['linear'], f'{host}: facts differ:\n{json.dumps(got, indent=1)}'
    facts = runs['svc_linear'].task('Gathering Facts', 'target')['result']['ansible_facts']
    assert facts['ansible_user_id'] == 'svc-login'
    assert facts['ansible_python']['executable'] == '/usr/bin/python3'


def test_copy_checksums_on_target(parity_runs):
    r = parity_runs['runs']['svc_linear']
    src = parity_runs['src']
    want = {'empty.bin': _sha1(src / 'empty.bin'), 'one.bin': _sha1(src / 'one.bin'),
            'big.bin': _sha1(src / 'big.bin'), UNI_NAME: hashlib.sha1(UNI_CONTENT.encode()).hexdigest(),
            'src-' + UNI_NAME: _sha1(src / UNI_NAME)}
    sizes = {'empty.bin': 0, 'one.bin': 1, 'big.bin': 3 * 1024 * 1024 + 17}
    for host in ('target', 'local'):
        items = r.task('stat files', host)['result']['results']
        got = {i['item']: i['stat'].get('checksum') for i in items}
        assert got == want, f'{host}: {got}'
        for i in items:
            assert i['stat']['exists'], i
            if i['item'] in sizes:
                assert i['stat']['size'] == sizes[i['item']], i
        assert r.task('copy big', host)['status'] == 'changed'
        assert r.task('copy big again', host)['status'] == 'ok'
        assert r.task('copy content unicode again', host)['status'] == 'ok'
        owner = 'svc-login' if host == 'target' else 'root'
        assert r.task('file stat after touch', host)['result']['stat']['pw_name'] == owner
        assert r.task('file stat after touch', host)['result']['stat']['mode'] == '0640'


def test_fetch_checksums(parity_runs):
    src = parity_runs['src']
    want = {}
    for host in ('target', 'local'):
        want[f'{host}/{UNI_NAME}'] = hashlib.sha1(UNI_CONTENT.encode()).hexdigest()
        want[f'{host}/big.bin'] = _sha1(src / 'big.bin')
    assert parity_runs['fetched']['linear'] == want
    assert parity_runs['fetched']['svc_linear'] == want
    r = parity_runs['runs']['svc_linear']
    for host in ('target', 'local'):
        res = r.task('fetch big', host)['result']
        assert res['checksum'] == want[f'{host}/big.bin'], res
        assert res['changed'] is True


def test_template_lineinfile_raw_and_loop(parity_runs):
    import base64
    r = parity_runs['runs']['svc_linear']
    for host in ('target', 'local'):
        content = base64.b64decode(r.task('slurp template', host)['result']['content']).decode()
        assert f'host={host}\n' in content
        assert f'ü={len(UNI_CONTENT)}' in content
        assert r.task('lineinfile create', host)['status'] == 'changed'
        assert r.task('lineinfile regexp', host)['status'] == 'changed'
        assert r.task('lineinfile unchanged', host)['status'] == 'ok'
        raw = r.task('raw unicode', host)['result']
        assert raw['rc'] == 0
        # over ssh on a terminal, as vanilla's ssh -tt
        assert raw['stdout'] == ('rå ✓ [x]\r\nzweite\r\n' if host == 'target' else 'rå ✓ [x]\nzweite\n'), raw
        assert r.task('use loop results', host)['result']['msg'] == ['a', 'b c', 'ü']
        assert r.task('command argv', host)['result']['stdout'] == 'a b|ü|[x]|'
        assert r.task('command stdin', host)['result']['stdout'] == 'line1\nzwei ü'
        assert r.task('command chdir', host)['result']['stdout'].endswith('/' + host)
        sh = r.task('shell env and failed_when', host)
        assert sh['status'] == 'changed' and sh['result']['rc'] == 3, sh
        assert sh['result']['stdout'] == 'FROM ENV ü' and sh['result']['stderr'] == 'to-stderr'
        assert r.task('shell changed_when', host)['status'] == 'ok'
        assert r.task('shell failed_when true', host)['status'] == 'failed'


def test_failures_match_vanilla(parity_runs):
    runs = parity_runs['runs']
    for task in ('failing command', 'failing shell rc', 'file on bad path', 'missing executable'):
        for host in ('target', 'local'):
            got = {}
            for strategy, r in runs.items():
                res = r.task(task, host)
                assert res['status'] == 'failed', res
                got[strategy] = {k: normalize(res['result'].get(k)) for k in ('failed', 'rc', 'msg', 'stdout', 'stderr')}
            assert got['svc_linear'] == got['linear'], f'{task} on {host}'
    r = runs['svc_linear']
    assert r.task('failing command', 'target')['result']['rc'] == 1
    assert r.task('failing shell rc', 'target')['result']['rc'] == 7


def test_no_log_hides_secret(parity_runs):
    for strategy, r in parity_runs['runs'].items():
        assert SECRET not in r.stdout, f'{strategy}: secret leaked to stdout'
        assert SECRET not in r.stderr, f'{strategy}: secret leaked to stderr'
        for host in ('target', 'local'):
            for task in ('no_log command', 'no_log failing'):
                res = r.task(task, host)
                assert SECRET not in json.dumps(res), f'{strategy} {task} {host}: {res}'
            assert r.task('secret was seen by the module', host)['status'] == 'ok'


CHECK_DIFF_PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    ws: "{{ ws_root }}/{{ inventory_hostname }}"
  tasks:
    - name: prepare dir
      file: path="{{ ws }}" state=directory
      check_mode: false
    - name: prepare file
      copy: content="old line\\nkeep me\\n" dest="{{ ws }}/f.txt"
      check_mode: false
    - name: prepare lines
      copy: content="a = 1\\nb = 2\\n" dest="{{ ws }}/l.txt"
      check_mode: false
    - name: copy content check
      copy: content="new line\\nkeep me\\n" dest="{{ ws }}/f.txt"
    - name: copy new file check
      copy: content="brand new\\n" dest="{{ ws }}/new.txt"
    - name: lineinfile check
      lineinfile: path="{{ ws }}/l.txt" regexp="^b =" line="b = 3"
    - name: lineinfile insert check
      lineinfile: path="{{ ws }}/l.txt" line="c = ü"
    - name: command in check mode is skipped
      command: touch "{{ ws }}/should-not-exist"
    - name: read back file
      slurp: src="{{ ws }}/f.txt"
      check_mode: false
    - name: read back lines
      slurp: src="{{ ws }}/l.txt"
      check_mode: false
    - name: new file absent
      stat: path="{{ ws }}/new.txt"
      check_mode: false
"""


def test_check_and_diff_mode_match_vanilla(ssh_env, sshd_alive, tmp_path):
    import base64
    ws_root = Path(f'/tmp/svc-check-{uuid.uuid4().hex[:8]}')
    ws_root.mkdir()
    os.chmod(ws_root, 0o1777)
    runs = {}
    try:
        for strategy in ('linear', 'svc_linear'):
            for host in ('target', 'local'):
                shutil.rmtree(ws_root / host, ignore_errors=True)
            runs[strategy] = run_playbook(CHECK_DIFF_PLAYBOOK, tmp_path=tmp_path / strategy, strategy=strategy,
                                          inventory=inventory_for(ssh_env), extra_vars={'ws_root': str(ws_root)},
                                          args=['--check', '--diff'])
    finally:
        shutil.rmtree(ws_root, ignore_errors=True)
    runs['linear'].assert_ok()
    r = runs['svc_linear'].assert_ok()
    assert_same_results(runs['linear'], r)
    for host in ('target', 'local'):
        res = r.task('copy content check', host)
        assert res['status'] == 'changed'
        assert res['result']['diff'][0]['after'] == 'new line\nkeep me\n', res
        assert res['result']['diff'][0]['before'] == 'old line\nkeep me\n', res
        assert r.task('lineinfile check', host)['status'] == 'changed'
        assert r.task('command in check mode is skipped', host)['status'] == 'skipped'
        assert base64.b64decode(r.task('read back file', host)['result']['content']) == b'old line\nkeep me\n'
        assert base64.b64decode(r.task('read back lines', host)['result']['content']) == b'a = 1\nb = 2\n'
        assert r.task('new file absent', host)['result']['stat']['exists'] is False
