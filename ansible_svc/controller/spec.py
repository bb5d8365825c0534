"""Build the plain-dict connection spec from resolved plugin options.

Runs in Ansible worker processes. Global state: none.

A spec is what the mux's ConnectionService keys its cache on and connects
with. It is built once per connection from ``get_option`` values, which
Ansible has already resolved per host (variables, keywords, CLI, env, ini,
templating), so nothing leaks between hosts.
"""

from __future__ import annotations

import re
import shlex

import mitogen.core

from ansible_svc.controller import compat

#: ssh options that would start a shared ControlMaster outliving the run. The
#: interpreter's own ssh connection is persistent already, so they only leave
#: processes behind; we drop them. A ``ControlPath`` of the user's is kept,
#: with ``ControlMaster no``: an existing master there (one a user opened
#: with a second factor, say) is used, and none is ever started.
CONTROL_OPTIONS = ("controlmaster", "controlpersist")


def split_ssh_args(*strings: str | None) -> list[str]:
    """Split ssh argument strings and drop ControlMaster-family options."""
    args: list[str] = []
    for string in strings:
        if string:
            args.extend(shlex.split(string))
    kept: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        option = None
        if arg == "-o" and i + 1 < len(args):
            option, skip = args[i + 1], True
        elif arg.startswith("-o") and len(arg) > 2:
            option = arg[2:]
        if option is not None:
            name = option.replace("=", " ").split(None, 1)[0].lower()
            if name in CONTROL_OPTIONS:
                continue
            kept.extend(["-o", option])
            if name == "controlpath":
                kept.extend(["-o", "ControlMaster=no"])
            continue
        kept.append(arg)
    return kept


def _ssh_options(args: list[str]) -> tuple[dict, set]:
    """The ``-o`` options of an ssh command line (lower-case name -> value,
    the first one winning, as in ssh) and its single-letter flags."""
    options: dict = {}
    flags: set = set()
    for i, arg in enumerate(args):
        if arg == "-o" and i + 1 < len(args):
            option = args[i + 1]
        elif arg.startswith("-o") and len(arg) > 2:
            option = arg[2:]
        else:
            if arg.startswith("-") and arg[1:].isalpha() and (i == 0 or args[i - 1] != "-o"):
                flags.update(arg[1:])
            continue
        name, _sep, value = option.replace("=", " ", 1).partition(" ")
        options.setdefault(name.lower(), value.strip().lower())
    return options, flags


def tty_closed_notice(get_option) -> bytes:
    """What vanilla's ``ssh -tt`` prints on stderr when a command's terminal
    session ends, for this host's ssh arguments: ssh says so at log level
    INFO (not with ``-q`` or a lower ``LogLevel``), as "Shared connection"
    when vanilla multiplexes (``ControlPersist`` with ``ControlMaster``)."""
    args = []
    for name in ("ssh_args", "ssh_common_args", "ssh_extra_args"):
        args.extend(shlex.split(plain(get_option(name)) or ""))
    options, flags = _ssh_options(args)
    if "q" in flags or options.get("loglevel") in ("quiet", "fatal", "error"):
        return b""
    shared = options.get("controlmaster", "no") != "no" and options.get("controlpersist", "no") not in ("no", "false")
    notice = "%sonnection to %s closed.\r\n" % ("Shared c" if shared else "C", plain(get_option("host")))
    return notice.encode("utf-8")


def plain(value):
    """Copy `value` into builtin types.

    ansible-core 2.19 hands out tagged subclasses of str and int; they must
    not cross the wire (targets and the mux cannot, and need not, unpickle
    Ansible's classes).
    """
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def python_for(interpreter: str | None) -> str | None:
    """An explicit interpreter to start targets with, or None for discovery."""
    if not interpreter or interpreter.strip() in compat.adapter().discovery_values:
        return None
    return interpreter.strip()


def secret(value: str | None):
    return mitogen.core.Secret(value) if value else None


#: The reference's (Mitogen for Ansible's) variables that ansible-svc does
#: not honour, declared as options of svc_ssh so that setting one fails the
#: host with what to do instead, never silently changing behaviour. Those it
#: honours are aliases of our own options (docs/configuration.md has the
#: whole table).
UNSERVED_REFERENCE_OPTIONS = {
    "mitogen_ssh_debug_level": "ansible-svc does not show ssh's debug output; run the host with "
    "ANSIBLE_SVC_DISABLE=1 and ansible_ssh_verbosity to see it",
    "mitogen_ssh_compression": "compression follows the ssh arguments as in vanilla Ansible (-C in ansible_ssh_args, "
    "or -o Compression=yes|no in ansible_ssh_extra_args)",
}

#: Options of ``ansible.builtin.ssh`` that svc_ssh cannot honour, declared
#: so that setting one fails the host at its first task, never silently:
#: option -> (its variable, why and what to do instead).
UNSERVED_SSH_OPTIONS = {
    "verbosity": ("ansible_ssh_verbosity", "ssh's debug output is not shown; run with ANSIBLE_SVC_DISABLE=1 to see "
                  "vanilla's"),
    "scp_extra_args": ("ansible_scp_extra_args", "files travel over the target interpreter's own ssh connection, "
                       "never through scp; put ssh options in ansible_ssh_extra_args"),
    "sftp_extra_args": ("ansible_sftp_extra_args", "files travel over the target interpreter's own ssh connection, "
                        "never through sftp; put ssh options in ansible_ssh_extra_args"),
}

#: Vanilla's defaults for a PKCS11 token: key authentication only, and the
#: PIN (the password) typed at the token's prompt.
PKCS11_ARGS = ["-o", "KbdInteractiveAuthentication=no", "-o", "PreferredAuthentications=publickey",
               "-o", "PasswordAuthentication=no"]
PKCS11_PROMPT = "Enter PIN for "


_HOP = re.compile(r"^(?:(?P<user>[^@]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:@\[\]]+))(?::(?P<port>\d+))?$")


def via_hops(value: str | None, user: str | None) -> list[dict]:
    """The ``via`` option, ``[user@]host[:port]`` hops separated by commas,
    as ``[{"host", "port", "user"}]`` (first hop first); `user` is the
    default login."""
    from ansible.errors import AnsibleError

    hops = []
    for word in (value or "").split(","):
        word = word.strip()
        if not word:
            continue
        match = _HOP.match(word)
        if match is None:
            raise AnsibleError("svc_via: %r is not a [user@]host[:port] hop" % word)
        port = match.group("port")
        hops.append({"host": match.group("v6") or match.group("host"), "port": int(port) if port else 22,
                     "user": match.group("user") or user})
    return hops


def refuse_unserved(get_option) -> None:
    """Fail on a reference variable that would silently change behaviour."""
    from ansible.errors import AnsibleError

    for name, instead in UNSERVED_REFERENCE_OPTIONS.items():
        if get_option(name) is not None:
            raise AnsibleError("%s is a Mitogen for Ansible variable that ansible-svc does not honour: %s" % (name, instead))
    for name, (variable, instead) in UNSERVED_SSH_OPTIONS.items():
        if get_option(name):
            raise AnsibleError("ansible-svc does not honour the ssh option %s (%s): %s" % (name, variable, instead))


def _login_secrets(get_option) -> tuple:
    """(password, extra ssh arguments, password prompt) as vanilla's
    ``password_mechanism`` and ``pkcs11_provider`` make them."""
    from ansible.errors import AnsibleError

    password = get_option("password") if get_option("password_mechanism") != "disable" else None
    prompt = get_option("sshpass_prompt") or None
    provider = get_option("pkcs11_provider")
    if not provider:
        return password, [], prompt
    if not password:
        raise AnsibleError("to use pkcs11_provider you must specify a password/pin")
    return password, PKCS11_ARGS + ["-o", "PKCS11Provider=%s" % provider], prompt or PKCS11_PROMPT


def ssh_spec(get_option) -> dict:
    """Spec for ``svc_ssh`` from its resolved options."""
    refuse_unserved(get_option)
    get_option = _plain_options(get_option)
    host_key_checking = get_option("host_key_checking")
    password, token_args, password_prompt = _login_secrets(get_option)
    return {
        "transport": "ssh",
        "host": get_option("host"),
        "port": get_option("port"),
        "user": get_option("remote_user"),
        "password": secret(password),
        "identity_file": get_option("private_key_file"),
        "ssh_path": get_option("ssh_executable") or "ssh",
        "ssh_args": token_args + split_ssh_args(get_option("ssh_args"), get_option("ssh_common_args"),
                                                get_option("ssh_extra_args")),
        "check_host_keys": "enforce" if host_key_checking else "ignore",
        "timeout": get_option("timeout"),
        "keepalive_interval": get_option("keepalive_interval"),
        "keepalive_count": get_option("keepalive_count"),
        "default_python": python_for(get_option("python_interpreter")),
        "via": via_hops(get_option("via"), get_option("remote_user")),
        "password_prompt": password_prompt,
        "retries": get_option("reconnection_retries") or 0,
    }


def with_agent_key(spec: dict, public_key: str, agent: str | None) -> dict:
    """`spec` logging in with a key held by the run's ssh-agent (key data,
    ``private_key``), picked by its public half, as vanilla does."""
    args = list(spec["ssh_args"]) + ["-o", "IdentitiesOnly=yes"]
    if agent:
        args += ["-o", "IdentityAgent=%s" % agent]
    return dict(spec, identity_file=public_key, ssh_args=args)


#: How long a container's interpreter may take to start when the plugin's
#: own timeout option is 0 or unset (podman's means "no timeout").
CONTAINER_TIMEOUT = 30

#: Per container transport: the plugin options of its vanilla namesake that
#: make the exec command line. Keys: exe, exec_args, env, workdir, privileged.
_CONTAINER_OPTIONS = {
    "podman": {"exe": "podman_executable", "exec_args": "podman_extra_args", "env": "extra_env_vars",
               "workdir": "working_directory", "timeout": "container_timeout"},
    "docker": {"exe": "docker_executable", "exec_args": "docker_extra_args", "env": "extra_env", "workdir": "working_dir",
               "privileged": "privileged", "timeout": "container_timeout"},
    "chroot": {"exe": "chroot_exe"},
}


def container_spec(kind: str, get_option) -> dict:
    """Spec for ``svc_podman``, ``svc_docker`` or ``svc_chroot``."""
    from ansible.errors import AnsibleError

    get_option = _plain_options(get_option)
    names = _CONTAINER_OPTIONS[kind]
    if kind == "podman" and get_option("privilege_escalation_method") not in (None, "auto", "none"):
        raise AnsibleError("ansible-svc does not honour ansible_podman_privilege_escalation=%s: use become "
                           "(become_method sudo or su) for the tasks that need it"
                           % get_option("privilege_escalation_method"))
    value = {key: get_option(option) for key, option in names.items()}
    return {
        "transport": kind,
        "host": get_option("remote_addr"),
        "user": get_option("remote_user") if kind != "chroot" else None,
        "exe": value.get("exe") or None,
        "exec_args": shlex.split(value.get("exec_args") or ""),
        "env": {str(k): str(v) for k, v in (value.get("env") or {}).items()},
        "workdir": value.get("workdir") or None,
        "privileged": bool(value.get("privileged")),
        "timeout": value.get("timeout") or CONTAINER_TIMEOUT,
        "default_python": python_for(get_option("python_interpreter")),
        "via": [],
    }


def local_spec(get_option) -> dict:
    get_option = _plain_options(get_option)
    return {
        "transport": "local",
        "host": "localhost",
        "timeout": get_option("timeout"),
        "default_python": python_for(get_option("python_interpreter")),
    }


def _plain_options(get_option):
    return lambda name: plain(get_option(name))


#: Become methods mitogen starts with connection classes of its own, by the
#: plugin names that ask for them.
NATIVE_BECOME = {"sudo": "sudo", "su": "su", "doas": "doas", "community.general.doas": "doas"}


def become_spec(plugin, shell) -> dict:
    """Become settings of the task's become plugin: for a native method its
    options; for any other plugin also the command line the plugin builds
    around our stage 0 (``ansible_svc.target.become``), the strings it
    prompts, succeeds and fails with."""
    get_option = _plain_options(plugin.get_option)
    name = plain(plugin.name).rsplit(".", 1)[-1] if plugin.name.startswith("ansible.builtin.") else plain(plugin.name)
    spec = {
        "method": NATIVE_BECOME.get(name, name),
        "user": get_option("become_user") or "root",
        "password": secret(get_option("become_pass")),
        "exe": get_option("become_exe") or name.rsplit(".", 1)[-1],
        "flags": get_option("become_flags") or "",
    }
    if not native(spec):
        spec.update(through_plugin(plugin, shell, name))
    return spec


def native(become: dict) -> bool:
    """Whether mitogen's own class for the method takes these settings."""
    method = become["method"]
    if method not in NATIVE_BECOME.values():
        return False
    if method == "sudo":
        import mitogen.sudo

        try:
            mitogen.sudo.parse_sudo_flags(shlex.split(become["flags"]))
        except (mitogen.core.StreamError, ValueError):
            return False  # e.g. -g group: sudo itself takes them
    # su with a password goes through the plugin, whose prompt list knows
    # every language (mitogen's su answers "password:" only).
    return method == "sudo" or not (become["flags"] or (method == "su" and become["password"]))


def through_plugin(plugin, shell, name: str) -> dict:
    """What the mux needs to start the become interpreter with the plugin's
    own command line; the plugin's random id replaced by a stand-in, so that
    the settings are the same for every task."""
    from ansible.errors import AnsibleError
    from ansible.module_utils.common.text.converters import to_text
    from gettext import dgettext

    from ansible_svc.target import become as target_become

    if not compat.contract_ok("become"):
        raise AnsibleError("ansible-svc cannot start a become interpreter through the %s become plugin with this "
                           "ansible-core; use sudo, su or doas, or ANSIBLE_SVC_DISABLE=1" % name)
    command = plugin.build_become_command(target_become.stage0(), shell)
    ident = compat.adapter().become_id(plugin)
    if not plugin.success or ident not in command:
        raise AnsibleError("the %s become plugin gives no success marker, so ansible-svc cannot tell when it has "
                           "become the user; use ANSIBLE_SVC_DISABLE=1 or a vanilla connection for these hosts" % name)
    prompt = None
    localized = compat.adapter().localized_prompt(plugin) if compat.contract_ok("su_prompts") else None
    if plugin.prompt and isinstance(plugin.prompt, str):
        prompt = r"^\s*" + re.escape(plugin.prompt.strip())
    elif localized:
        prompt = localized
    elif plugin.prompt and plugin.get_option("become_pass"):
        raise AnsibleError("the %s become plugin recognises its password prompt with its own code, which ansible-svc "
                           "cannot run on the target; use ANSIBLE_SVC_DISABLE=1 or a vanilla connection for these "
                           "hosts" % name)

    def stand_in(text):
        return plain(text).replace(ident, target_become.ID_TOKEN) if text else text

    return {
        "command": stand_in(command),
        "success": stand_in(plugin.success),
        "prompt": stand_in(prompt),
        "incorrect": [plain(to_text(dgettext(plugin.name, s))) for s in plugin.fail],
        "missing": [plain(to_text(dgettext(plugin.name, s))) for s in plugin.missing],
    }
