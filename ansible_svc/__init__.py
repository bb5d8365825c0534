"""ansible-svc: runs Ansible tasks through long-lived target interpreters.

Layout (the process each subpackage's code runs in):

* ``ansible_svc.controller``: ``ansible-playbook`` and its forked workers.
* ``ansible_svc.mux``: the one mux process per run (router, service pool).
* ``ansible_svc.target``: shipped by mitogen into target interpreters; it may
  import only the standard library and mitogen.

This file must stay import-free: targets import it too.
"""

# !mitogen: minify_safe

__version__ = "0.1.0"

#: The collection root this package was loaded from when an ansible-galaxy
#: install carries it (set by the collection's plugin_utils/bundled.py), so
#: the mux imports the same copy; None when it was installed with pip.
BUNDLED_ROOT = None
