# Copyright (c) ansible-svc contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = """
name: svc_ssh
short_description: Run tasks over ssh through a persistent Python interpreter on the target
description:
  - Starts one Python interpreter per target, account and connection settings over ssh, and keeps it
    for the whole C(ansible-playbook) run. Modules are sent once and cached on the target; each task is
    one call. With C(become), a second interpreter runs as the become user (C(sudo), C(su) and C(doas)
    natively, any other become plugin through its own command line). With O(via), the login goes
    through bastions.
  - Set it as a host's connection (C(ansible_connection), or C(transport) in C(ansible.cfg) for every
    host) under any strategy; the first worker that needs it starts the run's mux. It is also used
    automatically for hosts whose connection is C(ssh) when the play runs with a C(svc_*) strategy.
  - With the environment variable E(ANSIBLE_SVC_DISABLE) set to a true value, every operation goes to
    C(ansible.builtin.ssh) instead. Option names, variables and precedence are those of C(ansible.builtin.ssh), so inventories
    work unchanged.
  - ControlMaster, ControlPersist and ControlPath options are dropped from the ssh arguments, because the
    interpreter's ssh connection is itself persistent, and a shared master would outlive the run.
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
  keepalive_interval:
    description:
      - Seconds between keepalive probes on the ssh connection to the target's interpreter (ssh's
        C(ServerAliveInterval)); with O(keepalive_count), how soon a silently dead host is found.
      - Not used when the ssh arguments set C(ServerAliveInterval) or C(ServerAliveCountMax) themselves.
      - The reference's C(mitogen_ssh_keepalive_interval) is an alias.
    type: int
    default: 15
    vars:
      - name: mitogen_ssh_keepalive_interval
      - name: svc_ssh_keepalive_interval
    env:
      - name: ANSIBLE_SVC_SSH_KEEPALIVE_INTERVAL
  keepalive_count:
    description:
      - Unanswered keepalive probes after which ssh gives up on the connection (ssh's
        C(ServerAliveCountMax)). The reference's C(mitogen_ssh_keepalive_count) is an alias.
    type: int
    default: 3
    vars:
      - name: mitogen_ssh_keepalive_count
      - name: svc_ssh_keepalive_count
    env:
      - name: ANSIBLE_SVC_SSH_KEEPALIVE_COUNT
  via:
    description:
      - Bastions to reach the host through, as a comma-separated chain of C([user@]host[:port]) hops
        (IPv6 addresses in brackets). The controller logs in to the first hop, each hop to the next, and
        the last hop to the host; each hop keeps one persistent interpreter for the whole run, shared by
        every host behind it, so a bastion fans out to many targets over one login.
      - Each hop is logged in to with this host's ssh settings (C(ssh_executable), arguments, private
        key file, host key checking; user and port default to this host's user and 22). The logins
        from a hop run ssh I(on that hop), so the key file and known-hosts files named in the settings
        must exist there, as with the reference's C(mitogen_via).
      - The reference's C(mitogen_via) is an alias (C(svc_via) wins when both are set). Where the
        reference takes an inventory host name, give the address, e.g.
        C("{{ hostvars['bastion'].ansible_host }}").
    type: string
    vars:
      - name: mitogen_via
      - name: svc_via
    env:
      - name: ANSIBLE_SVC_VIA
  mitogen_ssh_debug_level:
    description:
      - The reference's ssh debug variable. Not honoured; a host that sets it fails with a message.
    type: int
    vars:
      - name: mitogen_ssh_debug_level
  mitogen_ssh_compression:
    description:
      - The reference's ssh compression variable. Compression follows the ssh arguments as in vanilla
        (C(-C) in C(ansible_ssh_args)); a host that sets it fails with a message saying so.
    type: bool
    vars:
      - name: mitogen_ssh_compression
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
  host:
    description: Hostname or address to connect to.
    type: string
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_ssh_host
      - name: delegated_vars['ansible_host']
      - name: delegated_vars['ansible_ssh_host']
  port:
    description: Remote port to connect to.
    type: int
    ini:
      - section: defaults
        key: remote_port
    env:
      - name: ANSIBLE_REMOTE_PORT
    vars:
      - name: ansible_port
      - name: ansible_ssh_port
    keyword:
      - name: port
  remote_user:
    description: User name to log in as.
    type: string
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
      - name: ansible_ssh_user
    cli:
      - name: user
    keyword:
      - name: remote_user
  password:
    description: Login password. Typed at ssh's prompt through a pseudo-terminal; never logged.
    type: string
    vars:
      - name: ansible_password
      - name: ansible_ssh_pass
      - name: ansible_ssh_password
  private_key_file:
    description: Private key for public key authentication.
    type: string
    ini:
      - section: defaults
        key: private_key_file
    env:
      - name: ANSIBLE_PRIVATE_KEY_FILE
    vars:
      - name: ansible_private_key_file
      - name: ansible_ssh_private_key_file
    cli:
      - name: private_key_file
        option: --private-key
  private_key:
    description:
      - Private key contents, as vanilla's. Ansible's
        own code adds the key to the run's ssh-agent (the C(SSH_AGENT) setting must be C(auto) or an
        agent's socket) and ssh picks it by its public half. Takes precedence over O(private_key_file).
    type: string
    env:
      - name: ANSIBLE_PRIVATE_KEY
    vars:
      - name: ansible_private_key
      - name: ansible_ssh_private_key
  private_key_passphrase:
    description: Passphrase of O(private_key) (not of O(private_key_file)).
    type: string
    env:
      - name: ANSIBLE_PRIVATE_KEY_PASSPHRASE
    vars:
      - name: ansible_private_key_passphrase
      - name: ansible_ssh_private_key_passphrase
  sshpass_prompt:
    description:
      - A password prompt to answer with O(password) besides ssh's own (vanilla's C(sshpass -P)), for
        example a PIN prompt or a localized one.
    type: string
    default: ''
    ini:
      - section: ssh_connection
        key: sshpass_prompt
    env:
      - name: ANSIBLE_SSHPASS_PROMPT
    vars:
      - name: ansible_sshpass_prompt
  password_mechanism:
    description:
      - How the login password reaches ssh. V(sshpass) and V(ssh_askpass) (vanilla's default) both
        mean that O(password) is typed at ssh's prompt (and at
        O(sshpass_prompt)) through a pseudo-terminal; V(disable) means it is never typed, and ssh runs
        with C(BatchMode yes).
    type: string
    default: ssh_askpass
    choices: [sshpass, ssh_askpass, disable]
    ini:
      - section: ssh_connection
        key: password_mechanism
    env:
      - name: ANSIBLE_SSH_PASSWORD_MECHANISM
    vars:
      - name: ansible_ssh_password_mechanism
  pkcs11_provider:
    description:
      - PKCS11 smart card provider, for example C(/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so). As vanilla,
        ssh runs with C(PKCS11Provider) and public key authentication only, and O(password) is the PIN,
        typed at the C(Enter PIN for) prompt (or O(sshpass_prompt)); a provider without a password fails.
    type: string
    default: ''
    ini:
      - section: ssh_connection
        key: pkcs11_provider
    env:
      - name: ANSIBLE_PKCS11_PROVIDER
    vars:
      - name: ansible_ssh_pkcs11_provider
  reconnection_retries:
    description:
      - Extra attempts to start the target's interpreter when ssh cannot reach the host (not after an
        authentication failure, and never for a command that already ran), pausing 0, 1, 3, 7, ... (at
        most 30) seconds between attempts as vanilla does.
    type: integer
    default: 0
    ini:
      - section: connection
        key: retries
      - section: ssh_connection
        key: retries
    env:
      - name: ANSIBLE_SSH_RETRIES
    vars:
      - name: ansible_ssh_retries
  use_tty:
    description:
      - As vanilla, commands that Ansible runs without a module and without input (C(raw), C(script),
        modules Ansible does not pipeline) get a pseudo-terminal, like C(ssh -tt), so stderr joins stdout,
        line ends are CRLF, and stderr ends with ssh's C(Shared connection to HOST closed.) notice
        (C(Connection to HOST closed.) without C(ControlPersist); none with C(-q) or a C(LogLevel) below
        C(INFO) in the ssh arguments). V(false) runs them on pipes.
    type: boolean
    default: true
    ini:
      - section: ssh_connection
        key: usetty
    env:
      - name: ANSIBLE_SSH_USETTY
    vars:
      - name: ansible_ssh_use_tty
  verbosity:
    description:
      - Not honoured. A host that sets it above 0 fails with a message, as ssh's debug output
        is vanilla's alone (set E(ANSIBLE_SVC_DISABLE) for the run to see it).
    type: int
    default: 0
    ini:
      - section: ssh_connection
        key: verbosity
    env:
      - name: ANSIBLE_SSH_VERBOSITY
    vars:
      - name: ansible_ssh_verbosity
  scp_extra_args:
    description:
      - Not honoured. Files travel over the target interpreter's own ssh connection, never through
        C(scp); a host that sets it fails with a message (put ssh options in O(ssh_extra_args)).
    type: string
    default: ''
    ini:
      - section: ssh_connection
        key: scp_extra_args
    env:
      - name: ANSIBLE_SCP_EXTRA_ARGS
    vars:
      - name: ansible_scp_extra_args
    cli:
      - name: scp_extra_args
  sftp_extra_args:
    description:
      - Not honoured. Files travel over the target interpreter's own ssh connection, never through
        C(sftp); a host that sets it fails with a message (put ssh options in O(ssh_extra_args)).
    type: string
    default: ''
    ini:
      - section: ssh_connection
        key: sftp_extra_args
    env:
      - name: ANSIBLE_SFTP_EXTRA_ARGS
    vars:
      - name: ansible_sftp_extra_args
    cli:
      - name: sftp_extra_args
  ssh_executable:
    description: The ssh client to run.
    type: string
    default: ssh
    ini:
      - section: ssh_connection
        key: ssh_executable
    env:
      - name: ANSIBLE_SSH_EXECUTABLE
    vars:
      - name: ansible_ssh_executable
  ssh_args:
    description: Arguments for every ssh command line (ControlMaster family options are dropped).
    type: string
    default: -C -o ControlMaster=auto -o ControlPersist=60s
    ini:
      - section: ssh_connection
        key: ssh_args
    env:
      - name: ANSIBLE_SSH_ARGS
    vars:
      - name: ansible_ssh_args
  ssh_common_args:
    description: Extra arguments for ssh, as for C(ansible.builtin.ssh).
    type: string
    default: ''
    ini:
      - section: ssh_connection
        key: ssh_common_args
    env:
      - name: ANSIBLE_SSH_COMMON_ARGS
    vars:
      - name: ansible_ssh_common_args
    cli:
      - name: ssh_common_args
  ssh_extra_args:
    description: Extra arguments for ssh only, as for C(ansible.builtin.ssh).
    type: string
    default: ''
    ini:
      - section: ssh_connection
        key: ssh_extra_args
    env:
      - name: ANSIBLE_SSH_EXTRA_ARGS
    vars:
      - name: ansible_ssh_extra_args
    cli:
      - name: ssh_extra_args
  host_key_checking:
    description:
      - Check the target's host key against known_hosts (ssh's StrictHostKeyChecking=yes).
      - When false, host keys are neither checked nor recorded.
    type: boolean
    default: true
    ini:
      - section: defaults
        key: host_key_checking
      - section: ssh_connection
        key: host_key_checking
    env:
      - name: ANSIBLE_HOST_KEY_CHECKING
      - name: ANSIBLE_SSH_HOST_KEY_CHECKING
    vars:
      - name: ansible_host_key_checking
      - name: ansible_ssh_host_key_checking
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
    """ssh transport through a persistent target interpreter."""

    transport = "ssh"
    vanilla_plugin = "ansible.builtin.ssh"

    def __new__(cls, *args, **kwargs):
        # Not in __init__: without our package the class is abstract, and
        # Python refuses to create it before __init__ could say why.
        if IMPORT_ERROR is not None:
            raise AnsibleError("svc_ssh needs the ansible_svc and mitogen Python packages in the Python that runs "
                               "Ansible "
                               "(the ansible_svc.accel collection carries ansible_svc: pip install mitogen; a checkout: pip install .): %s" % IMPORT_ERROR)
        return super().__new__(cls)

    def build_spec(self):
        spec = specs.ssh_spec(self.get_option)
        if self.get_option("private_key"):
            spec = self.with_key_data(spec)
        return spec

    def command_terminal(self, sudoable):
        if not (sudoable and self.get_option("use_tty")):
            return None
        return specs.tty_closed_notice(self.get_option)
