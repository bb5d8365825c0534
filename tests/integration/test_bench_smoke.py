"""Smoke test of the benchmark suite: `python -m bench --smoke` works end to end.

No timing assertions: it only proves every mode runs the smoke workloads
against the test sshd and the results are written and sane.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO, load_ssh_env

# The benchmark harness: no ansible-core code takes part (see conftest.py).
pytestmark = pytest.mark.newest_core_only

MODES = {'vanilla', 'reference', 'svc', 'floor'}
WORKLOADS = {'loop10', 'tasks10'}


def test_bench_smoke(tmp_path):
    load_ssh_env()  # skips when `make env` has not run
    out = tmp_path / 'results'
    proc = subprocess.run(
        [sys.executable, '-m', 'bench', '--smoke', '--out', str(out), '--work', str(tmp_path / 'work')],
        cwd=REPO, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, f'{proc.stdout}\n{proc.stderr}'

    assert (out / 'latest.md').is_file() and (out / 'latest.json').is_file()
    data = json.loads((out / 'latest.json').read_text())
    results = data['results']
    assert {(r['workload'], r['mode']) for r in results} == {(w, m) for w in WORKLOADS for m in MODES}
    for r in results:
        assert r['ok'] and r['rc'] == 0 and not r['error'], r
        assert r['wall'] > 0 and r['cpu'] > 0 and r['maxrss_mib'] > 0, r
        assert r['recap']['target']['failed'] == 0 and r['recap']['target']['unreachable'] == 0, r
        # The stall-counting callback ran in every mode (the count itself is chance).
        assert isinstance(r['stalls'], int), r

    md = (out / 'latest.md').read_text()
    assert 'FAIL**' not in md
    for name in WORKLOADS:
        assert f'| {name} |' in md
    assert 'svc-login' in md and 'ansible-core' in md
    assert 'run_command 1 s stalls' in md
