"""The ssh connection that carries a target's login interpreter.

Runs in the mux, and in a bastion's interpreter for the next hop
(``children``). Global state: none.

mitogen builds the ssh command line with options of its own (``LogLevel``,
``BatchMode``, ``StrictHostKeyChecking``, known-hosts files, keepalive)
ahead of the user's ssh arguments. ssh takes the first value it is given
for an option, so the user's would lose, where vanilla Ansible lets them
win. :class:`SshConnection` leaves out each of mitogen's own options that
the user's arguments set, and answers the user's own password prompt
(``sshpass_prompt``) as well as ssh's.
"""

# !mitogen: minify_safe

import re

import mitogen.core
import mitogen.ssh

from ansible_svc import rpc


def option_names(args):
    """The ``-o`` options (lower case) that ssh `args` set, in any of ssh's
    spellings: ``-o Name=v``, ``-oName=v``, ``-o "Name v"``."""
    args = list(args or ())
    names = set()
    for i, arg in enumerate(args):
        if arg == "-o" and i + 1 < len(args):
            option = args[i + 1]
        elif arg.startswith("-o") and len(arg) > 2:
            option = arg[2:]
        else:
            continue
        name = option.replace("=", " ").split(" ", 1)[0].strip().lower()
        if name:
            names.add(name)
    return names


def without_overridden(argv, user_args):
    """`argv` (an ssh command line that ends with `user_args` and what
    follows them) minus the ``-o`` options before `user_args` that
    `user_args` set too."""
    user_args = list(user_args or ())
    overridden = option_names(user_args)
    if not overridden:
        return list(argv)
    end = len(argv)
    for i in range(len(argv) - len(user_args) + 1):
        if argv[i:i + len(user_args)] == user_args:
            end = i
            break
    kept = []
    i = 0
    while i < end:
        if argv[i] == "-o" and i + 1 < end and option_names(argv[i:i + 2]) <= overridden:
            i += 2
            continue
        kept.append(argv[i])
        i += 1
    return kept + list(argv[end:])


class SetupProtocol(mitogen.ssh.SetupProtocol):
    """mitogen's answers to ssh's prompts, and to one more prompt; a login
    refused keeps ssh's own words (``user@host: Permission denied
    (publickey).``), as vanilla shows them."""

    def _on_permission_denied(self, line, match):
        options = self.stream.conn.options
        if options.password is not None and self.password_sent:
            verdict = mitogen.ssh.password_incorrect_msg
        elif options.password is None and mitogen.ssh.PASSWORD_PROMPT_PATTERN.search(line):
            verdict = mitogen.ssh.password_required_msg
        else:
            verdict = mitogen.ssh.auth_incorrect_msg
        words = line.decode("utf-8", "replace").strip()
        self.stream.conn._fail_connection(mitogen.ssh.PasswordError("%s: %s" % (verdict, words)))

    def add_password_prompt(self, prompt):
        pattern = re.compile(re.escape(prompt.encode("utf-8")))
        self.PARTIAL_PATTERNS = [(pattern, type(self)._on_password_prompt)] + list(self.PARTIAL_PATTERNS)


# mitogen's table names its own handler: point it at ours.
SetupProtocol.PATTERNS = [
    (pattern, SetupProtocol._on_permission_denied if pattern is mitogen.ssh.PERMDENIED_PATTERN else handler)
    for pattern, handler in mitogen.ssh.SetupProtocol.PATTERNS
]


class Options(mitogen.ssh.Options):
    #: A password prompt besides ssh's own (``sshpass_prompt``: a PIN, a
    #: wrapper's, a localized PAM prompt), answered with the password.
    password_prompt = None

    def __init__(self, password_prompt=None, **kwargs):
        super(Options, self).__init__(**kwargs)
        self.password_prompt = password_prompt


class SshConnection(mitogen.ssh.Connection):
    """mitogen's ssh connection; the user's ssh options win over its own."""

    options_class = Options
    diag_protocol_class = SetupProtocol

    def get_boot_command(self):
        return without_overridden(super(SshConnection, self).get_boot_command(), self.options.ssh_args)

    def stderr_stream_factory(self):
        stream = super(SshConnection, self).stderr_stream_factory()
        if self.options.password_prompt:
            stream.protocol.add_password_prompt(self.options.password_prompt)
        return stream


def connect(router, **kwargs):
    """``router.ssh(**kwargs)``, through :class:`SshConnection`."""
    return rpc.connect_with(router, SshConnection, **kwargs)
