# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Use the copy of the ansible_svc package that ships inside this collection.

Installed with ansible-galaxy, the collection carries the ansible_svc package
at its root, beside plugins/. Every plugin imports this module first, so that
copy is the one used, whatever else the Python running Ansible has: plugins
and package always come from one release. The package then records its root
(ansible_svc.BUNDLED_ROOT), and the mux is started with it on PYTHONPATH.

A pip install puts the collection's plugins under site-packages without a copy
of the package beside them; then this module does nothing and the plugins
import the installed package.
"""
from __future__ import annotations

import importlib.util
import os
import sys


def _load_bundled_package():
    if "ansible_svc" in sys.modules:
        return  # a plugin loaded before this one decided
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    package = os.path.join(root, "ansible_svc")
    init = os.path.join(package, "__init__.py")
    if not os.path.isfile(init):
        return
    spec = importlib.util.spec_from_file_location("ansible_svc", init, submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)
    sys.modules["ansible_svc"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["ansible_svc"]
        raise
    module.BUNDLED_ROOT = root


_load_bundled_package()
