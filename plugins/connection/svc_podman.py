# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = """
name: svc_podman
short_description: Run tasks in a podman container through a persistent Python interpreter
description:
  - Starts one Python interpreter inside the container per run (per container, user and options), with C(podman exec --interactive), and
    keeps it for the whole C(ansible-playbook) run; each task is one call to it instead of one
    C(podman exec) per command and file. With C(become), a second interpreter runs as the become user.
  - Set it as a host's connection (C(ansible_connection)) under any strategy; the first worker that
    needs it starts the run's mux. It is also used automatically for hosts whose connection is
    C(containers.podman.podman) when the play runs with a C(svc_*) strategy.
  - Option names, variables and precedence are those of C(containers.podman.podman), so inventories work unchanged.
    Until the target has the Python to run (C(raw) bootstrap plays), and with the environment
    variable E(ANSIBLE_SVC_DISABLE) set to a true value, operations go to C(containers.podman.podman) itself, which
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
    description: The name or ID of the container.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_podman_host
    env:
      - name: ANSIBLE_PODMAN_HOST
    ini:
      - section: defaults
        key: remote_addr
  remote_user:
    description: The user in the container the interpreter runs as (C(podman exec --user)); unset, the container's own.
    vars:
      - name: ansible_user
    env:
      - name: ANSIBLE_REMOTE_USER
    ini:
      - section: defaults
        key: remote_user
  podman_executable:
    description: The podman program. The reference's C(mitogen_podman_path) is an alias (C(ansible_podman_executable) wins).
    type: str
    default: podman
    vars:
      - name: mitogen_podman_path
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
    ini:
      - section: defaults
        key: podman_executable
  podman_extra_args:
    description: Arguments for podman before its C(exec) subcommand (for example C(--remote) or C(--url)).
    type: str
    default: ''
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
    ini:
      - section: defaults
        key: podman_extra_args
  container_timeout:
    description: Seconds the interpreter may take to start in the container; 0 (the default) means 30.
    type: int
    default: 0
    vars:
      - name: ansible_podman_timeout
    env:
      - name: ANSIBLE_PODMAN_TIMEOUT
    ini:
      - section: defaults
        key: podman_timeout
  extra_env_vars:
    description: Environment variables the interpreter, and so every command and module, runs with (C(--env)).
    type: dict
    default: {}
    vars:
      - name: ansible_podman_extra_env
  working_directory:
    description: The directory the interpreter, and so every command, starts in (C(--workdir)).
    type: str
    vars:
      - name: ansible_podman_working_directory
  privilege_escalation_method:
    description:
      - Only V(auto) and V(none) are accepted; the plugin's own sudo/su wrapping of every command is not
        honoured (a host that sets another value fails with a message). Use C(become).
    type: str
    default: auto
    vars:
      - name: ansible_podman_privilege_escalation
  mount_detection:
    description: Accepted for compatibility; files travel over the interpreter's connection, never through a mount.
    type: bool
    default: true
    vars:
      - name: ansible_podman_mount_detection
    env:
      - name: ANSIBLE_PODMAN_MOUNT_DETECTION
  ignore_mount_errors:
    description: Accepted for compatibility; see O(mount_detection).
    type: bool
    default: true
    vars:
      - name: ansible_podman_ignore_mount_errors
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
    """podman containers through a persistent interpreter inside."""

    transport = "podman"
    vanilla_plugin = "containers.podman.podman"
    #: As containers.podman.podman: Ansible's command line is split into
    #: words and run, without a shell (so ``raw: a; b`` runs ``a`` with the
    #: arguments ``;`` and ``b``, as there).
    command_shell = False

    def __new__(cls, *args, **kwargs):
        # Not in __init__: without our package the class is abstract, and
        # Python refuses to create it before __init__ could say why.
        if IMPORT_ERROR is not None:
            raise AnsibleError("svc_podman needs the ansible_svc and mitogen Python packages in the Python that runs "
                               "Ansible "
                               "(the ansible_svc.accel collection carries ansible_svc: pip install mitogen; a checkout: pip install .): %s" % IMPORT_ERROR)
        return super().__new__(cls)

    def build_spec(self):
        return specs.container_spec("podman", self.get_option)
