"""The two ways to install, each into a clean venv that has nothing else of ours.

* ansible-galaxy: the collection is self-contained. It carries the ansible_svc
  package; `pip install mitogen` beside ansible-core is all it needs.
* pip: `pip install <checkout>` puts the package and, from the same wheel, the
  collection into site-packages.

Each venv gets the ansible-core and mitogen versions the tests' own venv has,
so pip takes them from its cache.
"""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ansible_svc
from helpers import REPO, connection_only, inventory_for, run_playbook

pytestmark = pytest.mark.newest_core_only

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: parent
      shell: "cat /proc/$PPID/cmdline | tr '\\\\0' ' '"
    - name: job
      command: echo async
      async: 10
      poll: 0
      register: job
    - name: status
      ansible_svc.accel.mitogen_async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 20
      delay: 0.25
"""


def _clean_env() -> dict:
    # pytest-ansible points ANSIBLE_COLLECTIONS_PATH at the checkout (as
    # <repo>/collections): galaxy would find the collection "already installed".
    return {k: v for k, v in os.environ.items() if k not in ('ANSIBLE_COLLECTIONS_PATH', 'PYTHONPATH')}


def _run(argv, **kwargs):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=_clean_env(), **kwargs)
    assert p.returncode == 0, f'$ {" ".join(map(str, argv))}\n{p.stdout}{p.stderr}'
    return p


def _clean_venv(path: Path, *requirements: str) -> Path:
    """A new venv with ansible-core and mitogen as in ours, plus `requirements`."""
    from ansible.release import __version__ as core
    _run([sys.executable, '-m', 'venv', str(path)])
    python = path / 'bin' / 'python'
    _run([str(python), '-m', 'pip', 'install', '-q', f'ansible-core=={core}',
          f"mitogen=={importlib.metadata.version('mitogen')}", *requirements])
    return path / 'bin'


def _importable(bin_dir: Path) -> bool:
    return subprocess.run([str(bin_dir / 'python'), '-c', 'import ansible_svc'], cwd='/', env=_clean_env(),
                          capture_output=True, timeout=60).returncode == 0


def _run_both_ways_in(bin_dir: Path, tmp_path: Path, ssh_env: dict, env: dict):
    """A play through the FQCN strategy, then through the FQCN connections:
    both served on the ssh and the local host."""
    empty_cfg = tmp_path / 'empty.cfg'
    empty_cfg.write_text('')
    env = {'ANSIBLE_CONFIG': str(empty_cfg), 'PYTHONPATH': None, **env}
    inventory = inventory_for(ssh_env)
    for mode, strategy, inv in (('strategy', 'ansible_svc.accel.svc_linear', inventory),
                                ('connection', 'linear', connection_only(inventory, fqcn=True))):
        r = run_playbook(PLAYBOOK, tmp_path=tmp_path / mode, inventory=inv, strategy=strategy,
                         env=env, bin_dir=bin_dir).assert_ok()
        for host in ('target', 'local'):
            assert 'mitogen:ansible-svc' in r.task('parent', host)['result']['stdout'], (mode, r.output)
            assert r.task('status', host)['result']['stdout'] == 'async', (mode, r.output)


def test_galaxy_install_is_self_contained(ssh_env, sshd_alive, tmp_path):
    bin_dir = _clean_venv(tmp_path / 'venv')
    assert not _importable(bin_dir)
    dist, coll = tmp_path / 'dist', tmp_path / 'collections'
    _run([str(bin_dir / 'ansible-galaxy'), 'collection', 'build', str(REPO), '--output-path', str(dist)], cwd=tmp_path)
    tarball, = dist.glob('ansible_svc-accel-*.tar.gz')
    _run([str(bin_dir / 'ansible-galaxy'), 'collection', 'install', '-p', str(coll), str(tarball)], cwd=tmp_path)
    installed = coll / 'ansible_collections' / 'ansible_svc' / 'accel'
    assert (installed / 'ansible_svc' / 'target' / 'modules.py').is_file()
    # Still nothing outside the collection: the runs below can only use its copy.
    assert not _importable(bin_dir)
    _run_both_ways_in(bin_dir, tmp_path, ssh_env, {'ANSIBLE_COLLECTIONS_PATH': str(coll)})


def test_pip_install_brings_package_and_collection(ssh_env, sshd_alive, tmp_path):
    wheels = tmp_path / 'wheels'
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', str(wheels), str(REPO)], cwd=tmp_path)
    wheel, = wheels.glob('ansible_svc-*.whl')
    bin_dir = _clean_venv(tmp_path / 'venv', str(wheel))
    found = _run([str(bin_dir / 'python'), '-c', 'import ansible_svc; print(ansible_svc.__file__, ansible_svc.__version__)'],
                 cwd='/').stdout.split()
    assert found[0].startswith(str(tmp_path / 'venv')) and found[1] == ansible_svc.__version__, found
    _run_both_ways_in(bin_dir, tmp_path, ssh_env, {'ANSIBLE_COLLECTIONS_PATH': None})
