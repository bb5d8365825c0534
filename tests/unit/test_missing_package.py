"""Without the ansible_svc package, every plugin fails with a message that
names what is missing and how to install it (run in a subprocess where the
package cannot be imported)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import importlib.util, sys
sys.modules['ansible_svc'] = None  # import ansible_svc... raises ImportError
from ansible.errors import AnsibleError
spec = importlib.util.spec_from_file_location('probe', sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
try:
    if hasattr(plugin, 'Connection'):
        plugin.Connection(None, None)
    elif hasattr(plugin, 'StrategyModule'):
        plugin.StrategyModule.run(type('S', (), {'ansible_name': 'svc_linear'})(), None, None)
    else:
        plugin.ActionModule.run(None)
except AnsibleError as exc:
    print(exc)
"""

PLUGINS = sorted(str(p.relative_to(REPO)) for kind in ('connection', 'strategy', 'action')
                 for p in (REPO / 'plugins' / kind).glob('*.py') if p.name != '__init__.py')


@pytest.mark.parametrize('path', PLUGINS)
def test_a_plugin_without_the_package_says_how_to_install_it(path):
    out = subprocess.run([sys.executable, '-c', PROBE, str(REPO / path)], capture_output=True, text=True,
                         cwd='/', timeout=60)
    assert 'needs the ansible_svc and mitogen Python packages' in out.stdout, (out.stdout, out.stderr)
    assert 'pip install mitogen' in out.stdout and 'a checkout: pip install .' in out.stdout, out.stdout
