"""ansiballz.parse against a real AnsiballZ wrapper built by ansible-core.

The wrapper comes from a vanilla local run with ANSIBLE_KEEP_REMOTE_FILES=1
and pipelining off, which leaves it on disk (no ssh needed)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ansible_svc.controller import ansiballz

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope='module')
def wrapper(tmp_path_factory) -> bytes:
    tmp = tmp_path_factory.mktemp('ansiballz')
    remote_tmp = tmp / 'remote'
    cfg = tmp / 'empty.cfg'
    cfg.write_text('')
    pb = tmp / 'pb.yml'
    pb.write_text('- hosts: all\n  gather_facts: false\n  tasks:\n'
                  '    - ping:\n        data: "pöng [1]"\n')
    env = dict(os.environ, ANSIBLE_KEEP_REMOTE_FILES='1', ANSIBLE_PIPELINING='0', ANSIBLE_STRATEGY='linear',
               ANSIBLE_REMOTE_TMP=str(remote_tmp), ANSIBLE_LOCAL_TEMP=str(tmp / 'local'), ANSIBLE_CONFIG=str(cfg),
               ANSIBLE_NOCOLOR='1')
    p = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                        '-e', f'ansible_python_interpreter={sys.executable}', str(pb)],
                       env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    found = list(remote_tmp.rglob('AnsiballZ_ping.py'))
    assert len(found) == 1, (found, p.stdout)
    return found[0].read_bytes()


def test_is_wrapper(wrapper):
    assert ansiballz.is_wrapper(wrapper)
    assert not ansiballz.is_wrapper(b'#!/bin/sh\necho hi\n')
    assert not ansiballz.is_wrapper(None)
    assert not ansiballz.is_wrapper(b'')


def test_parse_real_wrapper(wrapper):
    payload = ansiballz.parse(wrapper)
    assert payload.interpreter == sys.executable
    assert payload.module_name == 'ping'
    assert payload.module_fqn.endswith('ping') and payload.module_fqn.startswith('ansible.modules')
    assert isinstance(payload.params, bytes)
    params = json.loads(payload.params)
    assert params['ANSIBLE_MODULE_ARGS']['data'] == 'pöng [1]'
    assert payload.key == hashlib.sha1(payload.zip_data).hexdigest()
    with zipfile.ZipFile(io.BytesIO(payload.zip_data)) as zf:
        names = zf.namelist()
    assert 'ansible/modules/ping.py' in names
    assert any(n.startswith('ansible/module_utils/') for n in names)
    assert isinstance(payload.extensions, dict)
    assert isinstance(payload.profile, str) and payload.profile
    assert payload.rlimit_nofile >= 0


def test_parse_rejects_non_wrappers(wrapper):
    with pytest.raises(ansiballz.NotAnsiballZ):
        ansiballz.parse(b'#!/usr/bin/python\nprint(1)\n')
    no_shebang = wrapper.split(b'\n', 1)[1]
    with pytest.raises(ansiballz.NotAnsiballZ):
        ansiballz.parse(no_shebang)
    start = wrapper.rfind(ansiballz.MAIN_CALL)
    with pytest.raises(ansiballz.NotAnsiballZ):
        ansiballz.parse(wrapper[:start])          # no final call
    with pytest.raises(ansiballz.NotAnsiballZ):
        ansiballz.parse(wrapper[:start] + b'_ansiballz_main(zip_data="eA==")\n')  # keys missing
    with pytest.raises(ansiballz.NotAnsiballZ):
        ansiballz.parse(wrapper[:start] + b'_ansiballz_main(zip_data=open("/etc/passwd"))\n')


def test_store_is_content_addressed(wrapper, tmp_path):
    payload = ansiballz.parse(wrapper)
    d = tmp_path / 'payloads'
    path = ansiballz.store(payload, str(d))
    assert Path(path).name == payload.key + '.zip'
    assert Path(path).read_bytes() == payload.zip_data
    assert oct(d.stat().st_mode & 0o777) == oct(0o700)
    mtime = os.stat(path).st_mtime_ns
    assert ansiballz.store(payload, str(d)) == path
    assert os.stat(path).st_mtime_ns == mtime
    assert [p.name for p in d.iterdir()] == [payload.key + '.zip']


def test_wrapper_call_keywords_are_the_ones_compat_knows(wrapper):
    """Contract (compat's ``ansiballz`` check): the keywords of the final
    ``_ansiballz_main`` call in a wrapper the installed core built."""
    import ast
    from ansible_svc.controller import compat

    start = wrapper.rfind(ansiballz.MAIN_CALL)
    call, _ = ansiballz._split_zip_literal(wrapper[start:])
    keywords = {kw.arg for kw in ast.parse(call.decode('utf-8')).body[0].value.keywords}
    assert keywords == compat.ANSIBALLZ_KNOWN


def test_store_never_recreates_a_removed_mux_directory(wrapper, tmp_path):
    """A worker that outlives its run (controller killed) must not bring the
    mux's directory back after the mux removed it."""
    payload = ansiballz.parse(wrapper)
    gone = tmp_path / 'ansible-svc-gone'
    with pytest.raises(FileNotFoundError):
        ansiballz.store(payload, str(gone / 'payloads'))
    assert not gone.exists()
