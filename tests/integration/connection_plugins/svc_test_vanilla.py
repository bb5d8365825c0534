# Test-only connection plugin: ansible.builtin.local under another name, so
# that svc_linear does not redirect it. Used to prove that connection types
# ansible-svc does not serve still run vanilla in the same play.
from __future__ import annotations

DOCUMENTATION = """
    name: svc_test_vanilla
    short_description: ansible.builtin.local under another name (ansible-svc tests)
    description:
        - Exactly ansible.builtin.local; only its name differs.
    extends_documentation_fragment:
        - connection_pipelining
    options: {}
"""

from ansible.plugins.connection.local import Connection as LocalConnection


class Connection(LocalConnection):
    transport = 'svc_test_vanilla'
