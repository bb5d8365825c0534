"""ansible-doc from the checkout, and the built and installed collection."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

import ansible_svc
from helpers import ANSIBLE_CFG, REPO, VENV_BIN, inventory_for, run_playbook


def _env(**extra):
    env = dict(os.environ)
    # pytest-ansible points this at <repo>/collections, a symlink to the
    # checkout; the installed copy must be the only one found.
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    env.update({'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_CONFIG': str(ANSIBLE_CFG),
                'PYTHONPATH': os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')]))})
    env.update(extra)
    return env


@pytest.mark.parametrize('kind,name,options', [
    ('connection', 'svc_ssh', ['remote_user', 'host_key_checking', 'private_key_file', 'ssh_args', 'port', 'via',
                               'private_key', 'private_key_passphrase', 'sshpass_prompt']),
    ('connection', 'svc_local', ['python_interpreter', 'timeout']),
    ('strategy', 'svc_linear', []),
    ('module', 'mitogen_async_status', ['jid', 'mode']),
    ('module', 'doctor', ['round_trips']),
])
def test_ansible_doc_from_checkout(tmp_path, kind, name, options):
    p = subprocess.run([str(VENV_BIN / 'ansible-doc'), '-t', kind, name], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert name in p.stdout
    for option in options:
        assert re.search(rf'^\s*[-=]?\s*{option}\b', p.stdout, re.M), f'{option} missing:\n{p.stdout}'
    assert '[ERROR]' not in p.stderr and '[WARNING]' not in p.stderr.replace(
        '[WARNING]: Deprecation warnings can be disabled', ''), p.stderr


def test_galaxy_version_matches_package():
    text = (REPO / 'galaxy.yml').read_text()
    version = re.search(r'^version:\s*(\S+)\s*$', text, re.M).group(1).strip('"\'')
    assert version == ansible_svc.__version__


GALAXY = str(VENV_BIN / 'ansible-galaxy')


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('galaxy')
    dist = tmp_path / 'dist'
    build = subprocess.run([GALAXY, 'collection', 'build', str(REPO), '--output-path', str(dist)],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = list(dist.glob('ansible_svc-accel-*.tar.gz'))
    assert [t.name for t in tarballs] == [f'ansible_svc-accel-{ansible_svc.__version__}.tar.gz']
    return tarballs[0]


def test_requires_ansible_admits_every_core_of_the_matrix():
    """No upper cap: 2.19, 2.20, 2.21 and later are admitted, 2.18 is not."""
    from packaging.specifiers import SpecifierSet
    from ansible.release import __version__

    text = (REPO / 'meta' / 'runtime.yml').read_text()
    spec = SpecifierSet(re.search(r'^requires_ansible:\s*"([^"]+)"', text, re.M).group(1))
    for version in ('2.19.0', '2.19.14', '2.20.10', '2.21.5', '2.22.0', __version__):
        assert version in spec, (version, spec)
    assert '2.18.9' not in spec


def test_galaxy_of_this_core_refuses_a_collection_that_excludes_it(tmp_path):
    """Negative control for the install test below: from 2.21, ansible-galaxy
    refuses a collection whose requires_ansible excludes the running core (as
    ours did, with <2.20.0). On older cores it only installs."""
    import shutil
    from ansible.release import __version__

    src = tmp_path / 'src'
    src.mkdir()
    for name in ('galaxy.yml', 'README.md'):
        shutil.copy(REPO / name, src / name)
    for name in ('meta', 'plugins'):
        shutil.copytree(REPO / name, src / name)
    major, minor = map(int, __version__.split('.')[:2])
    (src / 'meta' / 'runtime.yml').write_text(f'---\nrequires_ansible: ">=2.0.0,<{major}.{minor}.0"\n')
    build = subprocess.run([GALAXY, 'collection', 'build', str(src), '--output-path', str(tmp_path / 'dist')],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    inst = subprocess.run([GALAXY, 'collection', 'install', '-p', str(tmp_path / 'coll'), *map(str, (tmp_path / 'dist').glob('*.tar.gz'))],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    installed = (tmp_path / 'coll' / 'ansible_collections' / 'ansible_svc' / 'accel').exists()
    if (major, minor) >= (2, 21):
        assert inst.returncode != 0 and not installed, inst.stdout + inst.stderr
        assert 'requires ansible-core' in inst.stderr, inst.stderr
    else:
        assert inst.returncode == 0 and installed, inst.stdout + inst.stderr


def test_built_collection_contents(tarball):
    import tarfile
    with tarfile.open(tarball) as tf:
        names = tf.getnames()
    for wanted in ('plugins/strategy/svc_linear.py', 'plugins/connection/svc_ssh.py',
                   'plugins/connection/svc_local.py', 'plugins/action/mitogen_async_status.py',
                   'plugins/modules/mitogen_async_status.py', 'meta/runtime.yml', 'MANIFEST.json'):
        assert wanted in names, names
    # Nothing of the test suite or the dev environment ships.
    for name in names:
        assert not name.startswith(('tests/', '.state', '.venv', '.git/', 'roles/svc_test')), name


def test_built_collection_installs_and_runs(ssh_env, sshd_alive, tmp_path, tarball):
    coll = tmp_path / 'collections'
    inst = subprocess.run([GALAXY, 'collection', 'install', '-p', str(coll), str(tarball)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert (coll / 'ansible_collections' / 'ansible_svc' / 'accel' / 'plugins' / 'strategy' / 'svc_linear.py').exists(), inst.stdout + inst.stderr
    assert 'requires ansible-core' not in inst.stdout + inst.stderr
    listed = subprocess.run([GALAXY, 'collection', 'list', '-p', str(coll), 'ansible_svc.accel'],
                            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and re.search(rf'^ansible_svc\.accel\s+{re.escape(ansible_svc.__version__)}\s*$', listed.stdout, re.M), (
        listed.stdout + listed.stderr)

    empty_cfg = tmp_path / 'empty.cfg'
    empty_cfg.write_text('')
    pb = """
- hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ping:
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
    r = run_playbook(pb, tmp_path=tmp_path / 'run', inventory=inventory_for(ssh_env),
                     strategy='ansible_svc.accel.svc_linear', args=['-vvvv'],
                     env={'ANSIBLE_CONFIG': str(empty_cfg), 'ANSIBLE_COLLECTIONS_PATH': str(coll)}).assert_ok()
    for host in ('target', 'local'):
        assert r.task('ping', host)['result']['ping'] == 'pong'
        assert 'mitogen:ansible-svc' in r.task('parent', host)['result']['stdout']
        assert r.task('status', host)['result']['stdout'] == 'async'
        assert r.task('status', host)['result']['ansible_svc']['source'] == 'service'
    assert re.search(rf'Loading collection ansible_svc\.accel from {re.escape(str(coll))}', r.stdout), r.output
    # Plugins came from the installed collection, not from the checkout.
    assert str(REPO / 'plugins') not in r.stdout, r.output
