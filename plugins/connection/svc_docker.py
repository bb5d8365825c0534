# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = """
name: svc_docker
short_description: Run tasks in a docker container through a persistent Python interpreter
description:
  - Starts one Python interpreter inside the container per run (per container, user and options), with C(docker exec --interactive), and
    keeps it for the whole C(ansible-playbook) run; each task is one call to it instead of one
    C(docker exec) per command and file. With C(become), a second interpreter runs as the become user.
  - Set it as a host's connection (C(ansible_connection)) under any strategy; the first worker that
    needs it starts the run's mux. It is also used automatically for hosts whose connection is
    C(community.docker.docker) when the play runs with a C(svc_*) strategy.
  - Option names, variables and precedence are those of C(community.docker.docker), so inventories work unchanged.
    Until the target has the Python to run (C(raw) bootstrap plays), and with the environment
    variable E(ANSIBLE_SVC_DISABLE) set to a true value, operations go to C(community.docker.docker) itself, which
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
      - name: ansible_docker_host
  remote_user:
    description: The user in the container the interpreter runs as (C(docker exec --user)); unset, the container's own.
    vars:
      - name: ansible_user
      - name: ansible_docker_user
    env:
      - name: ANSIBLE_REMOTE_USER
    ini:
      - section: defaults
        key: remote_user
  docker_executable:
    description:
      - The docker program (vanilla's plugin takes C(docker) from C(PATH)). The reference's
        C(mitogen_docker_path) is an alias (C(svc_docker_executable) wins when both are set).
    type: string
    default: docker
    vars:
      - name: mitogen_docker_path
      - name: svc_docker_executable
  docker_extra_args:
    description: Arguments for docker before its C(exec) subcommand (for example C(--context) or C(-H)).
    default: ''
    vars:
      - name: ansible_docker_extra_args
    ini:
      - section: docker_connection
        key: extra_cli_args
  container_timeout:
    description: Seconds the interpreter may take to start in the container.
    type: integer
    default: 10
    vars:
      - name: ansible_docker_timeout
    env:
      - name: ANSIBLE_TIMEOUT
      - name: ANSIBLE_DOCKER_TIMEOUT
    ini:
      - section: defaults
        key: timeout
      - section: docker_connection
        key: timeout
  extra_env:
    description: Environment variables the interpreter, and so every command and module, runs with (C(--env)).
    type: dict
    vars:
      - name: ansible_docker_extra_env
  working_dir:
    description: The directory the interpreter, and so every command, starts in (C(--workdir)).
    type: string
    vars:
      - name: ansible_docker_working_dir
    env:
      - name: ANSIBLE_DOCKER_WORKING_DIR
    ini:
      - section: docker_connection
        key: working_dir
  privileged:
    description: Whether the interpreter, and so every command and module, runs privileged (C(--privileged)).
    type: boolean
    default: false
    vars:
      - name: ansible_docker_privileged
    env:
      - name: ANSIBLE_DOCKER_PRIVILEGED
    ini:
      - section: docker_connection
        key: privileged
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
    """docker containers through a persistent interpreter inside."""

    transport = "docker"
    vanilla_plugin = "community.docker.docker"
    #: As community.docker.docker: Ansible's command line runs with /bin/sh -c, not a login shell.
    command_shell = "/bin/sh"

    def __new__(cls, *args, **kwargs):
        # Not in __init__: without our package the class is abstract, and
        # Python refuses to create it before __init__ could say why.
        if IMPORT_ERROR is not None:
            raise AnsibleError("svc_docker needs the ansible_svc and mitogen Python packages in the Python that runs "
                               "Ansible "
                               "(the ansible_svc.accel collection carries ansible_svc: pip install mitogen; a checkout: pip install .): %s" % IMPORT_ERROR)
        return super().__new__(cls)

    def build_spec(self):
        return specs.container_spec("docker", self.get_option)
