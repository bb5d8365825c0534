# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = """
name: svc_local
short_description: Run tasks on the controller through a persistent Python interpreter
description:
  - Starts one Python interpreter on the controller (per account and interpreter) and keeps it for the
    whole C(ansible-playbook) run; each task is one call to it. With C(become), a second interpreter
    runs as the become user (C(sudo), C(su) and C(doas) natively, any other become plugin through its
    own command line).
  - Set it as a host's connection (C(ansible_connection), or C(transport) in C(ansible.cfg) for every
    host) under any strategy; the first worker that needs it starts the run's mux. It is also used
    automatically for hosts whose connection is C(local) when the play runs with a C(svc_*) strategy.
  - With the environment variable E(ANSIBLE_SVC_DISABLE) set to a true value, every operation goes to
    C(ansible.builtin.local) instead. Like C(ansible.builtin.local), it runs as the account running C(ansible-playbook)
    (C(remote_user) does not apply), and modules, commands and relative paths start from the directory
    C(ansible-playbook) was started in.
author: ansible-svc contributors (@ansible-svc)
version_added: 0.1.0
options:
  python_interpreter:
    description:
      - Interpreter the target's persistent Python process is started with, when no module has
        named one yet (for example for the first shell command of a run).
      - Modules run in the interpreter their AnsiballZ shebang names, which Ansible takes from
        C(ansible_python_interpreter) or interpreter discovery, exactly as vanilla. A running interpreter
        started with another string is reused only when that string resolves (PATH lookup, symlinks kept)
        to its own C(sys.executable); a virtualenv's python always gets its own.
      - C(auto) and the other discovery values mean C(python3).
    type: string
    vars:
      - name: ansible_python_interpreter
  task_isolation:
    description:
      - How new-style Python modules run in the target's persistent interpreter.
      - V(fork) runs each task in a child forked from that interpreter, which has the common module
        imports preloaded and never runs module code itself. Nothing a module does (globals,
        monkey-patches, C(sys.modules), cwd, environment, umask, signal handlers, threads, file
        descriptors, atexit handlers, crashes, C(os._exit)) reaches the next task.
      - V(inline) runs the module in the interpreter itself. It saves the fork, but restores only
        stdio, cwd, environment, umask, C(sys.argv), C(sys.path), warnings filters and the set of
        C(ansible*) modules; threads, signal handlers and changes inside shared modules persist, and a
        module that crashes or calls C(os._exit) ends the interpreter (the next task starts a new one).
      - Set it per task, play, group or host with the C(svc_task_isolation) variable. The reference's
        C(mitogen_task_isolation) is an alias (C(svc_task_isolation) wins when both are set).
    type: string
    default: fork
    choices: [fork, inline]
    vars:
      - name: mitogen_task_isolation
      - name: svc_task_isolation
    env:
      - name: ANSIBLE_SVC_TASK_ISOLATION
  timeout:
    description:
      - Seconds to wait for the target interpreter to start (ssh connect and Python bootstrap,
        or sudo).
    type: integer
    default: 10
    ini:
      - section: defaults
        key: timeout
      - section: ssh_connection
        key: timeout
    env:
      - name: ANSIBLE_TIMEOUT
      - name: ANSIBLE_SSH_TIMEOUT
    vars:
      - name: ansible_ssh_timeout
    cli:
      - name: timeout
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
    """Local transport through a persistent interpreter."""

    transport = "local"
    vanilla_plugin = "ansible.builtin.local"
    #: ansible.builtin.local runs commands with /bin/sh, not the login shell.
    command_shell = "/bin/sh"
    on_controller = True

    def __new__(cls, *args, **kwargs):
        # Not in __init__: without our package the class is abstract, and
        # Python refuses to create it before __init__ could say why.
        if IMPORT_ERROR is not None:
            raise AnsibleError("svc_local needs the ansible_svc and mitogen Python packages in the Python that runs "
                               "Ansible "
                               "(the ansible_svc.accel collection carries ansible_svc: pip install mitogen; a checkout: pip install .): %s" % IMPORT_ERROR)
        return super().__new__(cls)

    def build_spec(self):
        return specs.local_spec(self.get_option)
