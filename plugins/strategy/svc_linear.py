# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = """
name: svc_linear
short_description: Ansible's linear strategy, with tasks run through persistent target interpreters
description:
  - Runs plays exactly like C(ansible.builtin.linear) (every task on all hosts before the next task),
    but hosts whose connection is C(ssh) or C(local) are served by ansible-svc's C(svc_ssh) and
    C(svc_local) connection plugins, which keep one Python interpreter per target and account for
    the whole run and run each module as one RPC.
  - Starts one mux process per C(ansible-playbook) run, which ends with the run.
  - Hosts using any other connection type run vanilla, unchanged, in the same play.
  - Strategy plugins take no options; tune the connection plugins instead
    (see C(ansible-doc -t connection svc_ssh)).
author: ansible-svc contributors
version_added: 0.1.0
"""

from ansible.errors import AnsibleError
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible.utils.display import Display

try:
    from ansible_svc.controller import strategy as svc_strategy
except ImportError as exc:  # pragma: no cover - depends on the environment
    svc_strategy = None
    IMPORT_ERROR = exc
else:
    IMPORT_ERROR = None

display = Display()


class StrategyModule(LinearStrategyModule):
    def run(self, iterator, play_context):
        if svc_strategy is None:
            raise AnsibleError(
                "the svc_linear strategy needs the ansible_svc and mitogen Python packages in the "
                "Python that runs Ansible (pip install ansible-svc): %s" % IMPORT_ERROR
            )
        svc_strategy.install(self.ansible_name, self._tqm._forks, display.verbosity)
        return super().run(iterator, play_context)
