"""Paths, the ssh test environment, and the facts printed at the top of the report."""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get('SVC_TEST_STATE') or REPO / '.state').resolve()
SSH_ENV_FILE = STATE / 'ssh_env.json'
DEFAULT_WORK = REPO / 'bench' / '.work'
DEFAULT_OUT = REPO / 'bench' / 'results'
#: Benchmarked account: shell /bin/sh, no rc files (root's bashrc runs pyenv
#: init on every ssh command, which would inflate vanilla's numbers).
TARGET_USER = 'svc-login'


class BenchError(Exception):
    """A problem that stops the benchmark with a message (not a traceback)."""


def load_ssh_env() -> dict:
    """ssh_env.json written by tests/env/setup.sh (`make env`)."""
    if not SSH_ENV_FILE.exists():
        raise BenchError(f'{SSH_ENV_FILE} is missing: run `make env` as root first')
    env = json.loads(SSH_ENV_FILE.read_text())
    if not os.access(env['key'], os.R_OK):
        raise BenchError(f"ssh key {env['key']} is not readable: run the benchmark as root")
    return env


def ansible_playbook() -> str:
    """The ansible-playbook of the interpreter running the benchmark (the venv's)."""
    candidate = Path(sys.executable).parent / 'ansible-playbook'
    if candidate.exists():
        return str(candidate)
    found = shutil.which('ansible-playbook')
    if not found:
        raise BenchError('ansible-playbook not found next to this python nor on PATH')
    return found


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed'


def _product_version() -> str:
    text = (REPO / 'ansible_svc' / '__init__.py').read_text()
    match = re.search(r'__version__\s*=\s*["\']([^"\']+)', text)
    return match.group(1) if match else 'unknown'


def _git_commit() -> str:
    def git(*args):
        return subprocess.run(['git', *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git('rev-parse', '--short=12', 'HEAD') or 'unknown'
        if git('status', '--porcelain', '--untracked-files=no'):
            commit += ' (working tree has uncommitted changes)'
        return commit
    except (OSError, subprocess.SubprocessError):
        return 'unknown'


def _meminfo_gib() -> float:
    for line in Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemTotal:'):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _os_name() -> str:
    try:
        for line in Path('/etc/os-release').read_text().splitlines():
            if line.startswith('PRETTY_NAME='):
                return line.split('=', 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def facts() -> dict:
    """Software versions and machine facts for the report header."""
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'ansible_core': _dist_version('ansible-core'),
        'mitogen': _dist_version('mitogen'),
        'python': platform.python_version(),
        'ansible_svc': _product_version(),
        'git_commit': _git_commit(),
        'cores': os.cpu_count(),
        'memory_gib': round(_meminfo_gib(), 1),
        'cpu_model': _cpu_model(),
        'os': _os_name(),
        'kernel': platform.release(),
        'target_user': TARGET_USER,
        'target_note': (f'targets log in as `{TARGET_USER}` (login shell /bin/sh, no shell rc files, '
                        'passwordless sudo for become), target python /usr/bin/python3'),
    }
