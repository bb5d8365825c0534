# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = """
name: svc_free
short_description: Ansible's free strategy, with tasks run through persistent target interpreters
description:
  - Runs plays exactly like C(ansible.builtin.free) (each host runs through the play as fast as it can),
    but hosts whose connection is C(ssh) or C(local) are served by ansible-svc's C(svc_ssh) and
    C(svc_local) connection plugins, which keep one Python interpreter per target and account for
    the whole run and run each module as one RPC.
  - Starts one mux process per C(ansible-playbook) or C(ansible) run, which ends with the run.
  - Hosts using any other connection type run vanilla, unchanged, in the same play.
  - With the environment variable E(ANSIBLE_SVC_DISABLE) set to a true value, the play runs as
    C(ansible.builtin.free), all vanilla.
  - Strategy plugins take no options; tune the connection plugins instead
    (see C(ansible-doc -t connection svc_ssh)).
author: ansible-svc contributors (@ansible-svc)
version_added: 0.1.0
"""

from ansible.errors import AnsibleError
from ansible.plugins.strategy.free import StrategyModule as Base

try:
    if __name__.startswith("ansible_collections."):  # an installed collection: use the ansible_svc it carries
        from ansible_collections.ansible_svc.accel.plugins.plugin_utils import bundled  # noqa: F401 pylint: disable=unused-import
    from ansible_svc.controller.strategy import accelerated
except ImportError as exc:  # pragma: no cover - depends on the environment
    IMPORT_ERROR = exc

    class StrategyModule(Base):
        def run(self, iterator, play_context):
            raise AnsibleError(
                "the %s strategy needs the ansible_svc and mitogen Python packages in the "
                "Python that runs Ansible "
                "(the ansible_svc.accel collection carries ansible_svc: pip install mitogen; a checkout: pip install .): %s" % (self.ansible_name, IMPORT_ERROR)
            )
else:
    StrategyModule = accelerated(Base)
