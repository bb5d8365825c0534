"""The collection's execution-environment metadata (issue 16): what
ansible-builder reads from meta/execution-environment.yml names the Python
requirements pyproject.toml has, ansible-core aside (the EE provides it), and
both files ship in the collection tarball."""
from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def _requirements(lines) -> dict[str, Requirement]:
    reqs = [Requirement(line.split('#', 1)[0].strip()) for line in lines if line.split('#', 1)[0].strip()]
    return {req.name: req for req in reqs}


def _ee_metadata() -> dict:
    return yaml.safe_load((REPO / 'meta' / 'execution-environment.yml').read_text())


def test_ee_metadata_names_a_python_requirements_file():
    meta = _ee_metadata()
    assert meta['version'] == 1
    assert set(meta['dependencies']) == {'python'}
    # ansible-builder takes the path relative to the collection's root.
    assert (REPO / meta['dependencies']['python']).is_file()


def test_ee_requirements_are_pyprojects_without_ansible_core():
    ee = _requirements((REPO / _ee_metadata()['dependencies']['python']).read_text().splitlines())
    project = _requirements(tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['dependencies'])
    assert 'ansible-core' in project
    del project['ansible-core']
    assert {name: str(req) for name, req in ee.items()} == {name: str(req) for name, req in project.items()}
    assert 'mitogen' in ee
    # Uncapped: an EE combines many collections' requirements.
    for req in ee.values():
        assert not any(spec.operator in ('<', '<=', '==', '===', '~=') for spec in req.specifier), req


def test_ee_files_are_in_the_collection_tarball():
    ignored = yaml.safe_load((REPO / 'galaxy.yml').read_text()).get('build_ignore', [])
    for path in ('meta/execution-environment.yml', _ee_metadata()['dependencies']['python']):
        assert not [pattern for pattern in ignored
                    if fnmatch.fnmatch(path, pattern) or path.split('/')[0] == pattern], (path, ignored)
