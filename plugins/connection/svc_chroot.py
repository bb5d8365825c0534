# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = """
name: svc_chroot
short_description: Run tasks in a chroot through a persistent Python interpreter
description:
  - Starts one Python interpreter inside the chroot per run (per chroot), with C(chroot DIR python), and
    keeps it for the whole C(ansible-playbook) run; each task is one call to it instead of one
    C(chroot) per command and file. With C(become), a second interpreter runs as the become user.
  - Set it as a host's connection (C(ansible_connection)) under any strategy; the first worker that
    needs it starts the run's mux. It is also used automatically for hosts whose connection is
    C(community.general.chroot) when the play runs with a C(svc_*) strategy.
  - Option names, variables and precedence are those of C(community.general.chroot), so inventories work unchanged.
    Until the target has the Python to run (C(raw) bootstrap plays), and with the environment
    variable E(ANSIBLE_SVC_DISABLE) set to a true value, operations go to C(community.general.chroot) itself, which
    must then be installed.
author: ansible-svc contributors (@ansible-svc)
version_added: 0.1.0
options:
  python_interpreter:
    description:
      - Interpreter the persistent Python process is started with, when no module has named one yet
        (for example for the first shell command of a run); modules run in the interpreter their
        AnsiballZ shebang names, as in vanilla. C(auto) and the other discovery values mean C(python3).
    type: string
    vars:
      - name: ansible_python_interpreter
  task_isolation:
    description:
      - How new-style Python modules run in the persistent interpreter, as for C(svc_ssh),
        V(fork) (a child per task) or V(inline). The reference's C(mitogen_task_isolation) is an alias.
    type: string
    default: fork
    choices: [fork, inline]
    vars:
      - name: mitogen_task_isolation
      - name: svc_task_isolation
    env:
      - name: ANSIBLE_SVC_TASK_ISOLATION
  remote_addr:
    description: The path of the chroot.
    type: string
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  executable:
    description: The shell Ansible's command lines run with inside the chroot.
    type: string
    default: /bin/sh
    vars:
      - name: ansible_executable
    env:
      - name: ANSIBLE_EXECUTABLE
    ini:
      - section: defaults
        key: executable
  chroot_exe:
    description: The chroot program.
    type: string
    default: chroot
    vars:
      - name: ansible_chroot_exe
    env:
      - name: ANSIBLE_CHROOT_EXE
    ini:
      - section: chroot_connection
        key: exe
  disable_root_check:
    description: Accepted for compatibility; C(chroot) itself refuses an account that may not use it.
    type: bool
    default: false
    vars:
      - name: ansible_chroot_disable_root_check
    env:
      - name: ANSIBLE_CHROOT_DISABLE_ROOT_CHECK
    ini:
      - section: chroot_connection
        key: disable_root_check
"""

from ansible.errors import AnsibleError
from ansible.plugins.connection import ConnectionBase

try:
    if __name__.startswith("ansible_collections."):  # an installed collection: use the ansible_svc it carries
        from ansible_collections.ansible_svc.accel.plugins.plugin_utils import bundled  # noqa: F401 pylint: disable=unused-import
    from ansible_svc.controller import spec as specs
    from ansible_svc.controller.plugin_connection import SvcConnectionBase
except ImportError as exc:  # pragma: no cover - depends on the environment
    IMPORT_ERROR = exc
    SvcConnectionBase = ConnectionBase
else:
    IMPORT_ERROR = None


class Connection(SvcConnectionBase):
    """chroots through a persistent interpreter inside."""

    transport = "chroot"
    vanilla_plugin = "community.general.chroot"

    @property
    def command_shell(self):
        """As community.general.chroot: the ``executable`` option's shell."""
        return specs.plain(self.get_option("executable")) or "/bin/sh"

    def __new__(cls, *args, **kwargs):
        # Not in __init__: without our package the class is abstract, and
        # Python refuses to create it before __init__ could say why.
        if IMPORT_ERROR is not None:
            raise AnsibleError("svc_chroot needs the ansible_svc and mitogen Python packages in the Python that runs "
                               "Ansible "
                               "(the ansible_svc.accel collection carries ansible_svc: pip install mitogen; a checkout: pip install .): %s" % IMPORT_ERROR)
        return super().__new__(cls)

    def build_spec(self):
        return specs.container_spec("chroot", self.get_option)
