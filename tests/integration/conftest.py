"""Fixtures for the integration tests. The helpers live in helpers.py.

Tests get the ssh environment written by tests/env/setup.sh through the
`ssh_env` fixture, which skips (not fails) when `make env` has not run, so
the suite stays usable on machines where it cannot be set up.
"""
from __future__ import annotations

import functools

import pytest

from helpers import is_root, load_ssh_env, port_open, run_playbook, sshd_pid


def pytest_configure(config):
    config.addinivalue_line('markers', 'requires_root: skip the test unless running as root')
    config.addinivalue_line('markers', "newest_core_only: tests of ansible-svc's own machinery, where ansible-core is "
                                       "a bystander (faults, bastions, hostile targets, containers, signals, task "
                                       "isolation, process clean-up, installs, ansible-runner, the bench harness); "
                                       "`make test` runs them on the newest core of the matrix only")


def pytest_runtest_setup(item):
    if item.get_closest_marker('requires_root') and not is_root():
        pytest.skip('needs root (it manages users/sshd or reads root-only keys); run the tests as root')


@pytest.fixture(scope='session')
def ssh_env() -> dict:
    """ssh_env.json from tests/env/setup.sh; skips the test if it is not usable."""
    return load_ssh_env()


@pytest.fixture(scope='session')
def sshd_alive(ssh_env) -> int:
    """Pid of the test sshd; fails if setup.sh's sshd is gone or not listening."""
    pid = sshd_pid(ssh_env)
    assert pid, f"test sshd (pidfile {ssh_env.get('pidfile')}) is not running: run `make env`"
    assert port_open(ssh_env['host'], ssh_env['port']), (
        f"test sshd pid {pid} does not accept connections on {ssh_env['host']}:{ssh_env['port']}")
    return pid


@pytest.fixture
def playbook(tmp_path):
    """run_playbook with this test's tmp_path bound: playbook(text, inventory=..., ...)."""
    return functools.partial(run_playbook, tmp_path=tmp_path)


@pytest.fixture
def run_tmpdir():
    """A TMPDIR for ansible-playbook, short enough for the mux's socket path
    (unix sockets take 107 bytes; pytest's tmp_path is long); removed after."""
    import shutil
    import tempfile
    from pathlib import Path
    path = Path(tempfile.mkdtemp(prefix='svc-t-', dir='/tmp'))
    yield path
    shutil.rmtree(path, ignore_errors=True)
