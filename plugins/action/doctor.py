# Copyright: ansible-svc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of ``doctor``; its documentation lives in
``plugins/modules/doctor.py``, the logic in ``ansible_svc``."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

try:
    if __name__.startswith("ansible_collections."):  # an installed collection: use the ansible_svc it carries
        from ansible_collections.ansible_svc.accel.plugins.plugin_utils import bundled  # noqa: F401 pylint: disable=unused-import
    from ansible_svc.controller.doctor import ActionModule  # pylint: disable=unused-import
except ImportError as exc:  # pragma: no cover - depends on the environment
    IMPORT_ERROR = exc

    class ActionModule(ActionBase):
        def run(self, tmp=None, task_vars=None):
            raise AnsibleError(
                "doctor needs the ansible_svc and mitogen Python packages in the "
                "Python that runs Ansible "
                "(the ansible_svc.accel collection carries ansible_svc: pip install mitogen; a checkout: pip install .): %s" % IMPORT_ERROR
            )
