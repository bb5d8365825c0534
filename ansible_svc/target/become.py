"""Become through any become plugin: the plugin's own command line starts the
become interpreter.

Runs in the login interpreter on the target (``children`` starts it); the
worker imports it for :func:`stage0`. Global state: none.

sudo, su and doas are started by mitogen's own connection classes. Any other
become plugin (or sudo with flags mitogen does not parse) comes here:

1. The worker asks the plugin to wrap :func:`stage0` as "the command to run",
   exactly as Ansible asks it to wrap a module's command line. Stage 0 is a
   fixed one-line Python program that reads the real first stage from stdin.
2. The mux has the login interpreter start :class:`Connection`, which runs
   ``/bin/sh -c <that command>`` on a pseudo-terminal (the plugin may prompt
   on it or read stdin: both are the terminal), answers the plugin's password
   prompt, and on the plugin's success marker sends mitogen's first stage to
   stage 0. From there mitogen boots the interpreter as for any connection.
3. The plugin's own failure strings, a second prompt, or a prompt without a
   password fail the connection with vanilla's words; mitogen's connect
   timeout bounds the rest.
"""

# !mitogen: minify_safe

import re
import shlex

import mitogen.core
import mitogen.parent

#: Stand-ins the worker leaves in the plugin's command line and the mux
#: fills in (``ansible_svc.mux.become``): the become interpreter's Python, and
#: the plugin's random id (in its success marker and prompt), so that the
#: command is the same for every task and keys the interpreter cache. Word
#: characters only: they survive any quoting a plugin applies.
PYTHON_TOKEN = "ANSIBLESVCPYTHON"
ID_TOKEN = "ansiblesvcbecomeid"

#: Stage 0: read an 8-digit length, then that many bytes: the first stage's
#: script and its arguments, one per line; run it as ``python -c`` would.
#: One line, no single quotes, ``$`` or backquotes, for any plugin's quoting;
#: Python 2.7 and 3.
STAGE0 = (
    'import os,sys;'
    'r=lambda n,b=b"":b if len(b)>=n else r(n,b+(os.read(0,n-len(b)) or sys.exit(1)));'
    'a=r(int(r(8))).split(b"\\n");'
    'sys.argv=["-c"]+[x.decode() for x in a[1:]];'
    'exec(a[0])'
)


def stage0():
    """The command line a become plugin wraps: the become Python running
    :data:`STAGE0`."""
    return "%s -c %s" % (PYTHON_TOKEN, shlex.quote(STAGE0))


def stage1(boot_argv):
    """What stage 0 reads: mitogen's boot command minus the interpreter
    (``[..., "-c", script, args...]``), length-prefixed."""
    words = list(boot_argv[boot_argv.index("-c") + 1:])
    data = "\n".join(words).encode("utf-8")
    return b"%08d" % len(data) + data


class PasswordError(mitogen.core.StreamError):
    """The plugin refused the become password, or needed one not given."""
    pass


class Options(mitogen.parent.Options):
    def __init__(self, command, success, method=u"become", username=u"root", password=None,
                 prompt=None, incorrect=(), missing=(), **kwargs):
        super(Options, self).__init__(**kwargs)
        self.command = command
        self.success = success
        self.method = method
        self.username = username
        self.password = password
        self.prompt = prompt
        self.incorrect = tuple(incorrect or ())
        self.missing = tuple(missing or ())


def _any_of(strings):
    strings = [s for s in strings if s]
    if not strings:
        return None
    return re.compile(u"|".join(re.escape(s) for s in strings).encode("utf-8"))


class BootstrapProtocol(mitogen.parent.BootstrapProtocol):
    """mitogen's bootstrap, preceded by the plugin's prompt and marker."""

    password_sent = False
    answered_line = False
    stage1_sent = False

    def setup(self, conn):
        options = conn.options
        patterns = [(re.compile(re.escape(options.success.encode("utf-8"))), type(self)._on_success)]
        for regex, handler in ((_any_of(options.incorrect), type(self)._on_incorrect),
                               (_any_of(options.missing), type(self)._on_missing)):
            if regex is not None:
                patterns.append((regex, handler))
        self.PATTERNS = patterns + list(mitogen.parent.BootstrapProtocol.PATTERNS)
        self.PARTIAL_PATTERNS = []
        if options.prompt:
            self.PARTIAL_PATTERNS = [(re.compile(options.prompt.encode("utf-8")), type(self)._on_prompt)]

    def _fail(self, why):
        self.stream.conn._fail_connection(PasswordError(why))

    def on_line_received(self, line):
        self.answered_line = False
        return super(BootstrapProtocol, self).on_line_received(line)

    def _on_success(self, line, match):
        if not self.stage1_sent:
            self.stage1_sent = True
            self._writer.write(self.stream.conn.stage1)

    def _on_incorrect(self, line, match):
        if not self.stage1_sent:
            self._fail("Incorrect %s password" % self.stream.conn.options.method)

    def _on_missing(self, line, match):
        if not self.stage1_sent:
            self._fail("Missing %s password" % self.stream.conn.options.method)

    def _on_prompt(self, line, match):
        if self.stage1_sent or self.answered_line:
            return
        options = self.stream.conn.options
        if options.password is None:
            return self._fail("Missing %s password" % options.method)
        if self.password_sent:
            return self._fail("Incorrect %s password" % options.method)
        self.password_sent = self.answered_line = True
        self._writer.write((options.password + u"\n").encode("utf-8"))


class Connection(mitogen.parent.Connection):
    options_class = Options
    stream_protocol_class = BootstrapProtocol
    # One terminal for stdin, stdout, stderr and /dev/tty: wherever the
    # plugin prompts or reads, as on vanilla's ssh -tt.
    create_child = staticmethod(mitogen.parent.tty_create_child)
    child_is_immediate_subprocess = False
    stage1 = None

    def _get_name(self):
        return u"%s.%s" % (self.options.method.rsplit(".", 1)[-1], self.options.username)

    def stream_factory(self):
        stream = super(Connection, self).stream_factory()
        stream.protocol.setup(self)
        return stream

    def get_boot_command(self):
        self.stage1 = stage1(super(Connection, self).get_boot_command())
        return ["/bin/sh", "-c", self.options.command]
