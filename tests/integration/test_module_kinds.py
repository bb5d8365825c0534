"""Behaviour parity for every kind of module Ansible can run.

The same playbook runs under vanilla `linear` and `svc_linear` on the ssh
host (`target`) and on `local`, and each kind's task results must match:

* new-style Python (AnsibleModule, an AnsiballZ payload);
* binary modules: tiny static x86-64 ELF executables generated here, run by
  Ansible as `<module> <args file>`; one prints JSON, one junk, one nothing;
* WANT_JSON modules in Python, /bin/sh and perl;
* a `<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>` module (new-style for Ansible, so
  pipelined, but not an AnsiballZ wrapper);
* an old-style module reading `key=value` arguments from a file;
* a module whose shebang names a made-up interpreter that
  `ansible_svcfakesh_interpreter` replaces;
* the `script` action and `raw`, including `raw` bootstrapping the Python
  that `ansible_python_interpreter` names before later tasks need it.

The module sources live in tests/integration/library/; the binary modules
are generated into a per-run library directory.

Vanilla ssh runs non-pipelined commands (raw, script, modules that are not
pipelined) with a tty (`ssh -tt`): its output has CRLF line ends and
"Shared connection to ... closed." on stderr. svc_ssh runs them on a
terminal too, so results are compared as they are.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import uuid
from pathlib import Path

import pytest

from helpers import assert_same_results, inventory_for, run_playbook

LIBRARY = Path(__file__).resolve().parent / 'library'


# --- tiny static ELF ----------------------------------------------------------

def tiny_elf(message: bytes, exit_code: int = 0) -> bytes:
    """A static x86-64 Linux ELF that does write(1, message) and exit(exit_code).

    One PT_LOAD segment maps the whole file (headers, code, message) at
    0x400000; the code is hand-assembled, so no compiler is needed.
    """
    base = 0x400000
    ehdr_size, phdr_size = 64, 56
    entry_off = ehdr_size + phdr_size
    code = bytearray()
    code += b'\xb8\x01\x00\x00\x00'                      # mov eax, 1      (SYS_write)
    code += b'\xbf\x01\x00\x00\x00'                      # mov edi, 1      (stdout)
    code += b'\x48\x8d\x35\x00\x00\x00\x00'              # lea rsi, [rip+msg] (patched below)
    lea_end = len(code)
    code += b'\xba' + struct.pack('<I', len(message))    # mov edx, len
    code += b'\x0f\x05'                                  # syscall
    code += b'\xb8\x3c\x00\x00\x00'                      # mov eax, 60     (SYS_exit)
    code += b'\xbf' + struct.pack('<I', exit_code)       # mov edi, exit_code
    code += b'\x0f\x05'                                  # syscall
    code[lea_end - 4:lea_end] = struct.pack('<i', len(code) - lea_end)
    body = bytes(code) + message
    size = entry_off + len(body)
    ident = b'\x7fELF' + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little endian, SysV
    ehdr = ident + struct.pack('<HHIQQQIHHHHHH',
                               2, 0x3e, 1,               # ET_EXEC, x86-64, version
                               base + entry_off,         # e_entry
                               ehdr_size, 0,             # e_phoff, e_shoff
                               0, ehdr_size, phdr_size,  # flags, ehsize, phentsize
                               1, 0, 0, 0)               # phnum, shentsize, shnum, shstrndx
    phdr = struct.pack('<IIQQQQQQ', 1, 5,                # PT_LOAD, R+X
                       0, base, base, size, size, 0x1000)
    return ehdr + phdr + body


BINARY_MODULES = {
    'svc_kind_bin_json': b'{"changed": false, "kind": "binary", "msg": "hello from elf", "n": [1, 2]}\n',
    'svc_kind_bin_junk': b'this is not json\n',
    'svc_kind_bin_empty': b'',
}


def make_binary_library(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, message in BINARY_MODULES.items():
        path = directory / name
        path.write_bytes(tiny_elf(message))
        path.chmod(0o755)
    return directory


def test_tiny_elf_runs(tmp_path):
    # Guards the generator: the binaries must run here as plain executables.
    import subprocess
    lib = make_binary_library(tmp_path / 'lib')
    for name, message in BINARY_MODULES.items():
        data = (lib / name).read_bytes()
        assert data[:4] == b'\x7fELF' and len(data) < 300, name
        proc = subprocess.run([str(lib / name), '/dev/null'], capture_output=True, timeout=10)
        assert proc.returncode == 0, name
        assert proc.stdout == message and proc.stderr == b'', name


# --- the module-kinds playbook ------------------------------------------------

SCRIPT = """#!/bin/sh
# script action test: arguments, user, and an exit code chosen by the caller
printf 'argc=%s\\n' "$#"
for a in "$@"; do printf 'arg=[%s]\\n' "$a"; done
printf 'user=%s\\n' "$(id -un)"
case "$1" in fail) exit 3 ;; esac
exit 0
"""

KINDS_PLAYBOOK = r"""
- hosts: all
  gather_facts: false
  vars:
    ansible_svcfakesh_interpreter: /bin/sh
  tasks:
    - name: new style
      svc_kind_new: msg="héllo wörld" num=21
    - name: new style failing
      svc_kind_new: msg=bad fail=true
      ignore_errors: true
    - name: new style check mode
      svc_kind_new: msg=checked
      check_mode: true

    - name: binary json
      svc_kind_bin_json: msg="héllo" num=1
    - name: binary junk
      svc_kind_bin_junk: msg=x
      ignore_errors: true
    - name: binary empty
      svc_kind_bin_empty:
      ignore_errors: true

    - name: want_json python
      svc_kind_want_json_py: msg="héllo wörld" num=3
    - name: want_json python environment
      svc_kind_want_json_py: msg=env
      environment:
        SVC_KIND_ENV: "from env ü"
    - name: want_json python failing
      svc_kind_want_json_py: msg=bad fail=true
      ignore_errors: true
    - name: want_json sh
      svc_kind_want_json_sh: msg="héllo wörld" num=4
    - name: want_json perl
      svc_kind_want_json_perl: msg="hello perl" num=5

    - name: jsonargs
      svc_kind_jsonargs: msg="héllo wörld" num=6
    - name: jsonargs failing
      svc_kind_jsonargs: msg=bad fail=true
      ignore_errors: true

    - name: old style
      svc_kind_old: msg="héllo 'quoted' wörld" num=7
    - name: old style failing
      svc_kind_old: msg=bad fail=yes
      ignore_errors: true

    - name: other interpreter from ansible_svcfakesh_interpreter
      svc_kind_fakesh: msg="hello fake"

    - name: script with args
      script: "{{ script_path }} 'a b' ü \"[x]\""
    - name: script failing
      script: "{{ script_path }} fail"
      ignore_errors: true

    - name: raw
      raw: "printf '%s\\n' 'raw out ü' 'line 2'"
    - name: raw failing
      raw: "echo before-fail; exit 4"
      ignore_errors: true

    - name: module process parent
      shell: "cat /proc/$PPID/cmdline | tr '\\000' ' '"
"""

#: Tasks of each kind, compared separately so a failure names its kind.
KINDS = {
    'new-style python': ['new style', 'new style failing', 'new style check mode'],
    'binary json': ['binary json'],
    'binary junk': ['binary junk'],
    'binary empty': ['binary empty'],
    'want_json python': ['want_json python', 'want_json python environment', 'want_json python failing'],
    'want_json sh': ['want_json sh'],
    'want_json perl': ['want_json perl'],
    'jsonargs': ['jsonargs', 'jsonargs failing'],
    'old-style': ['old style', 'old style failing'],
    'ansible_<name>_interpreter': ['other interpreter from ansible_svcfakesh_interpreter'],
    'script': ['script with args', 'script failing'],
    'raw': ['raw', 'raw failing'],
}

HOSTS = ('target', 'local')


@pytest.fixture(scope='module')
def kinds_runs(ssh_env, sshd_alive, tmp_path_factory):
    base = tmp_path_factory.mktemp('kinds')
    binlib = make_binary_library(base / 'binlib')
    script = base / 'svc_kind_script.sh'
    script.write_text(SCRIPT)
    script.chmod(0o755)
    os.chmod(base, 0o755)
    pb_file = base / 'playbook.yml'
    pb_file.write_text(KINDS_PLAYBOOK)
    env = {'ANSIBLE_LIBRARY': f'{LIBRARY}{os.pathsep}{binlib}'}
    runs = {}
    for strategy in ('linear', 'svc_linear'):
        runs[strategy] = run_playbook(pb_file, tmp_path=base / strategy, strategy=strategy,
                                      inventory=inventory_for(ssh_env), extra_vars={'script_path': str(script)},
                                      env=env, args=['-v'], cwd=base)
    return runs


def test_vanilla_kinds_run_is_sane(kinds_runs):
    # If vanilla itself misbehaves, the comparison proves nothing.
    r = kinds_runs['linear']
    r.assert_ok()
    for host in HOSTS:
        assert r.stats[host]['failures'] == 0 and r.stats[host]['unreachable'] == 0, r.output
        assert r.task('new style', host)['result']['shouted'] == 'HÉLLO WÖRLD'
        assert r.task('binary json', host)['result']['msg'] == 'hello from elf'
        assert r.task('binary junk', host)['status'] == 'failed'
        assert r.task('want_json python', host)['result']['kind'] == 'want_json_py'
        assert r.task('want_json python environment', host)['result']['env'] == 'from env ü'
        assert r.task('want_json sh', host)['result']['shell_args']['msg'] == 'héllo wörld'
        assert r.task('want_json perl', host)['result']['msg'] == 'hello perl'
        assert r.task('jsonargs', host)['result']['msg'] == 'héllo wörld'
        assert r.task('old style', host)['result']['msg'] == "héllo 'quoted' wörld"
        assert r.task('other interpreter from ansible_svcfakesh_interpreter', host)['result']['flavour'] == 'sh'
        assert 'arg=[a b]' in r.task('script with args', host)['result']['stdout']
        assert r.task('raw', host)['result']['rc'] == 0


def test_svc_kinds_run_succeeds(kinds_runs):
    r = kinds_runs['svc_linear']
    r.assert_ok()
    for host in HOSTS:
        assert r.stats[host]['failures'] == 0, r.output
        assert r.stats[host]['unreachable'] == 0, r.output


def test_svc_kinds_ran_through_persistent_interpreter(kinds_runs):
    # Parity is only meaningful if svc_linear did not silently run vanilla.
    for host in HOSTS:
        svc = kinds_runs['svc_linear'].task('module process parent', host)['result']['stdout']
        van = kinds_runs['linear'].task('module process parent', host)['result']['stdout']
        assert 'mitogen:ansible-svc' in svc, (host, svc)
        assert 'mitogen' not in van, (host, van)


@pytest.mark.parametrize('kind', list(KINDS))
def test_kind_matches_vanilla(kinds_runs, kind):
    tasks = KINDS[kind]
    others = {r['task'] for r in kinds_runs['linear'].results} - set(tasks)
    vanilla = kinds_runs['linear']
    svc = kinds_runs['svc_linear']
    for name in tasks:
        for host in HOSTS:
            vanilla.task(name, host)  # exactly one result each, in both runs
            svc.task(name, host)
    # utf8_mode has its own test below (test_new_style_python_flags_match_vanilla).
    assert_same_results(vanilla, svc, drop={'utf8_mode'}, skip_tasks=tuple(others))


def test_new_style_python_flags_match_vanilla(kinds_runs):
    # The module reports sys.flags and the encodings of the Python that ran
    # it. Vanilla starts the interpreter over ssh with no locale set, so
    # Python coerces the C locale to C.UTF-8 and turns on UTF-8 mode (PEP
    # 538/540). The persistent interpreter is re-executed by mitogen's
    # bootstrap with the coerced LC_CTYPE already set, so its
    # sys.flags.utf8_mode is 0 (a documented limit); what UTF-8 mode changes
    # (file system, preferred and stdio encodings, stdio errors handler, the
    # LC_CTYPE modules and their children see) must still be the same.
    got = {}
    for strategy, r in kinds_runs.items():
        got[strategy] = {host: {k: r.task('new style', host)['result'].get(k)
                                for k in ('encodings', 'ignore_environment', 'python_real')}
                         for host in HOSTS}
    assert got['svc_linear'] == got['linear'], json.dumps(got, indent=1)


def test_want_json_gets_an_args_file(kinds_runs):
    # WANT_JSON (and binary) modules run as `<module> <args file>`: the
    # module saw exactly one argument, an existing file with its arguments.
    for strategy, r in kinds_runs.items():
        for host in HOSTS:
            res = r.task('want_json python', host)['result']
            assert res['argc'] == 2 and res['args_file_is_file'] is True, (strategy, host, res)
            assert res['user_keys'] == ['msg', 'num'], (strategy, host, res)


# --- raw bootstraps the interpreter -------------------------------------------

NOPY_PLAYBOOK = r"""
- hosts: all
  gather_facts: false
  vars:
    nopy_dir: "{{ nopy_root }}-{{ inventory_hostname }}"
    ansible_python_interpreter: "{{ nopy_dir }}/python3"
  tasks:
    - name: interpreter missing before bootstrap
      raw: "test -e {{ nopy_dir }}/python3 && echo present || echo absent"
    - name: bootstrap python with raw
      raw: "mkdir -p {{ nopy_dir }} && ln -sf /usr/bin/python3 {{ nopy_dir }}/python3"
    - name: ping after bootstrap
      ping:
    - name: command after bootstrap
      command: echo after bootstrap
    - name: module reports its interpreter
      svc_kind_new: msg=bootstrapped
    - name: raw after bootstrap
      raw: "echo still raw"
"""


def test_raw_bootstraps_missing_python(ssh_env, sshd_alive, tmp_path):
    """`ansible_python_interpreter` names a Python that does not exist yet;
    `raw` must work without it and create it, and later modules use it."""
    roots = []
    runs = {}
    try:
        for strategy in ('linear', 'svc_linear'):
            root = f'/tmp/svc-nopy-{uuid.uuid4().hex[:10]}'
            roots.append(root)
            runs[strategy] = run_playbook(NOPY_PLAYBOOK, tmp_path=tmp_path / strategy, strategy=strategy,
                                          inventory=inventory_for(ssh_env), extra_vars={'nopy_root': root},
                                          env={'ANSIBLE_LIBRARY': str(LIBRARY)}, args=['-v'])
    finally:
        for root in roots:
            for host in HOSTS:
                shutil.rmtree(f'{root}-{host}', ignore_errors=True)
    van = runs['linear'].assert_ok()
    for host in HOSTS:
        assert van.task('interpreter missing before bootstrap', host)['result']['stdout'].strip() == 'absent'
        assert van.task('ping after bootstrap', host)['result']['ping'] == 'pong'
        assert van.task('module reports its interpreter', host)['result']['python_real'] == os.path.realpath('/usr/bin/python3')
    svc = runs['svc_linear']
    assert svc.rc == 0, svc.output
    for host in HOSTS:
        assert svc.stats[host]['unreachable'] == 0 and svc.stats[host]['failures'] == 0, svc.output
    # Until the target has a Python, svc_ssh runs commands through Ansible's
    # own ssh plugin (the only way without one), and keeps no ssh master that
    # could outlive the run, so ssh's notice there reads "Connection to ...
    # closed." (docs/limits.md); after, commands run on a terminal of its own.
    without_python = ('bootstrap python with raw', 'interpreter missing before bootstrap')
    assert_same_results(van, svc, drop={'utf8_mode'}, skip_tasks=without_python)
    for name in without_python:
        vanilla_result = van.task(name, 'target')['result']
        svc_result = svc.task(name, 'target')['result']
        assert vanilla_result['stderr'] == 'Shared connection to 127.0.0.1 closed.\r\n', vanilla_result
        assert svc_result['stderr'] == 'Connection to 127.0.0.1 closed.\r\n', svc_result
        assert svc_result['stdout'] == vanilla_result['stdout'] and svc_result['rc'] == vanilla_result['rc']
        assert svc.task(name, 'local')['result'] == van.task(name, 'local')['result']
