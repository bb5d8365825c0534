"""The connection plugin class behind ``svc_ssh`` and ``svc_local``.

Runs in Ansible worker processes (and in the controller for
``meta: reset_connection``). Global state: none beyond the process's mux
attachment. This is the one place that translates Ansible's connection API
(options, become plugin, shell plugin, exceptions) into a
:class:`ansible_svc.controller.session.Session`.

Two details of Ansible's action layer are bridged here:

* Become. ActionBase wraps sudoable commands with the become plugin's
  command line; we run them in a second interpreter that already is the
  become user instead. :class:`BecomeRequest` keeps Ansible's own decision
  (same-user rules, ``sudoable``) and only records it.
* Module environment. Ansible puts ``environment:`` into the module's shell
  command line. We do not run that command line, so the connection's shell
  plugin hands us the environment it was asked to render.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import shlex

from ansible.errors import (
    AnsibleAuthenticationFailure,
    AnsibleConnectionFailure,
    AnsibleError,
    AnsibleFileNotFound,
)
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display
from ansible.utils.path import unfrackpath

from ansible_svc.controller import ansiballz, async_jobs, async_poll, compat, mux_client, spec as specs, strategy
from ansible_svc.controller.session import (
    AuthenticationFailed,
    BecomeFailed,
    InterpreterMissing,
    RemoteError,
    Session,
    SessionError,
    TargetUnreachable,
)

display = Display()


def in_session(method):
    """Run a connection method in the session of the current settings
    (Ansible's ``ensure_connect`` connects only once per connection); or,
    with ansible-svc switched off for the run, in Ansible's own plugin."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.switched_off:
            return getattr(self._vanilla_connection(), method.__name__)(*args, **kwargs)
        self._connect()
        return method(self, *args, **kwargs)

    return wrapper


class BecomeRequest(object):
    """Stands in for the become plugin on the connection.

    Everything is delegated to the real plugin, except that building the
    become command line only records that this command must run as the become
    user, and returns the command unchanged.
    """

    def __init__(self, plugin, connection):
        self._plugin = plugin
        self._connection = connection

    def __getattr__(self, name):
        return getattr(self._plugin, name)

    def build_become_command(self, cmd, shell):
        self._connection._become_next = True
        return cmd


class SvcConnectionBase(ConnectionBase):
    """Shared logic of our connection plugins; subclasses build the spec."""

    has_pipelining = True
    #: Which shell runs commands: None is the login shell, False none (the
    #: command line is split into words and run).
    command_shell: str | None | bool = None
    #: Ansible's own plugin for this transport: runs commands and transfers
    #: files on a target that has no Python yet (``raw`` bootstrap plays).
    vanilla_plugin: str = ""
    #: The target is the controller (``local``): as vanilla ``local``, the
    #: account is the controller's (``remote_user`` does not apply), and
    #: commands, modules and relative paths start from the worker's cwd.
    on_controller: bool = False
    #: ``ANSIBLE_SVC_DISABLE``: every operation goes to Ansible's own
    #: plugin for this transport, as if the host's connection were it.
    switched_off: bool = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._session: Session | None = None
        self._become_next = False
        self._module_env: dict = {}
        #: Async jobs this connection started: jid -> whether as become user.
        self._async_jobs: dict[str, bool] = {}
        #: AnsiballZ wrappers uploaded since the last async job started (an
        #: async task uploads its module, then async_wrapper, itself one on
        #: 2.21): remote path -> payload.
        self._uploaded_modules: dict = {}
        self._vanilla = None
        self.cwd = None
        self.switched_off = strategy.disabled()
        if not self.switched_off and mux_client.socket_path() is None:
            # Connection-only mode: no strategy of ours set up this worker.
            async_poll.install()
            compat.guard_result_queue()
        if self.on_controller:
            try:
                self.default_user = getpass.getuser()
            except KeyError:
                self.default_user = ""
        render_env = self._shell.env_prefix

        def env_prefix(**env):
            self._module_env = {specs.plain(str(k)): specs.plain(str(v)) for k, v in env.items()}
            return render_env(**env)

        self._shell.env_prefix = env_prefix

    # -- Ansible's hooks -----------------------------------------------------

    def matches_name(self, possible_names):
        """Also answer to the names the strategy redirects to us.

        Ansible reuses a task's connection across loop items only when the
        host's connection name matches the plugin; ``ssh`` must match
        ``svc_ssh``, or every item would reconnect.
        """
        if super().matches_name(possible_names):
            return True
        ours = self._load_name.rsplit(".", 1)[-1]
        return any(strategy.REDIRECTS.get(name) == ours for name in possible_names)

    def set_become_plugin(self, plugin):
        if self.switched_off:
            self.become = plugin
            if self._vanilla is not None:
                self._vanilla.set_become_plugin(plugin)
            return
        self.become = BecomeRequest(plugin, self) if plugin is not None else None

    def is_pipelining_enabled(self, wrap_async: bool = False) -> bool:
        if self.switched_off:
            return self._vanilla_connection().is_pipelining_enabled(wrap_async)
        # Modules always travel by RPC. For async tasks Ansible uploads the
        # module and its async_wrapper, and we start the job from its command
        # line (see exec_command), so every module kind works as in vanilla.
        from ansible import constants as C
        return not wrap_async and not C.DEFAULT_KEEP_REMOTE_FILES

    def build_spec(self) -> dict:
        raise NotImplementedError

    def command_terminal(self, sudoable: bool) -> bytes | None:
        """Whether a command without input runs on a terminal, as vanilla's
        transport runs it: None for pipes, else what the transport adds to
        stderr when the terminal session ends."""
        return None

    def with_key_data(self, spec: dict) -> dict:
        """`spec` logging in with key data (``private_key``) as vanilla does:
        Ansible's ssh plugin adds the key to the run's ssh-agent. Unchanged
        (the key data unused, with a warning) if that code is not as we
        expect."""
        if not compat.contract_ok("agent_keys"):
            return spec
        try:
            public_key = compat.adapter().populate_agent(self._vanilla_connection())
        except Exception as exc:  # vanilla's words and outcome
            raise AnsibleAuthenticationFailure("Failed to add configured private key into ssh-agent.") from exc
        return specs.with_agent_key(spec, public_key, os.environ.get("SSH_AUTH_SOCK"))

    def _connect(self):
        """Use the session for the current task's (or loop item's) settings.

        Ansible keeps one connection across a task's loop items, re-applying
        options and the become plugin for each item, so this runs before
        every operation: when any setting changed (user, become, passwords,
        interpreter, ...) the connection switches to the session, and so to
        the interpreters, of the new settings. Unchanged settings keep the
        session and its cached contexts.
        """
        spec = self.build_spec()
        spec["become"] = specs.become_spec(self.become._plugin, self._shell) if self.become else None
        if self._session is None or self._session.spec != spec:
            self._close_sessions()
            self._session = Session(spec)
            user = spec.get("user") or self.default_user or "(current)"
            display.vvv("ESTABLISH %s CONNECTION FOR USER: %s" % (spec["transport"].upper(), user), host=spec.get("host"))
        self._connected = True
        return self

    def _take_become(self) -> bool:
        become, self._become_next = self._become_next, False
        return become

    @in_session
    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        become = self._take_become() and sudoable
        env, self._module_env = self._module_env, {}
        with self._errors():
            if ansiballz.is_wrapper(in_data):
                try:
                    payload = ansiballz.parse(in_data)
                except ansiballz.NotAnsiballZ as exc:
                    display.vvvv("running the module payload as a plain command: %s" % exc, host=self._host())
                else:
                    if len(payload.interpreter.split()) > 1:
                        # Arguments would be lost by a persistent interpreter:
                        # run Ansible's own command line, as vanilla does.
                        display.vvvv("interpreter %r has arguments: running the module as a plain command" % payload.interpreter, host=self._host())
                    else:
                        display.vvv("EXEC module %s (%s)%s" % (payload.module_name, payload.interpreter, " as become user" if become else ""),
                                    host=self._host())
                        isolation = specs.plain(self.get_option("task_isolation"))
                        try:
                            return self._session.run_module(payload, become, env, self._cwd(), isolation)
                        except InterpreterMissing as exc:
                            # Vanilla's own outcome ("The module interpreter
                            # ... was not found"), through its plugin.
                            return self._vanilla_exec(exc, cmd, in_data, sudoable, become)
            cmd = specs.plain(to_text(cmd))
            command = async_jobs.parse_command(cmd) if in_data is None else None
            if command is not None:
                return self._start_async(command, become, env)
            display.vvv("EXEC %s" % cmd, host=self._host())
            cwd = self._cwd()
            stdin = bytes(to_bytes(in_data)) if in_data is not None else None
            closed_notice = self.command_terminal(sudoable) if stdin is None else None
            try:
                rc, out, err = self._session.run_command(cmd, stdin, become, self.command_shell, cwd,
                                                         tty=closed_notice is not None)
                return rc, out, err + (closed_notice or b"")
            except InterpreterMissing as exc:
                return self._vanilla_exec(exc, cmd, in_data, sudoable, become)

    def _vanilla_exec(self, why, cmd, in_data, sudoable, become):
        """``exec_command`` through Ansible's own plugin, as become wants."""
        if become:
            cmd = self.become._plugin.build_become_command(cmd, self._shell)
        return self._without_python(why).exec_command(cmd, in_data=in_data, sudoable=sudoable)

    def _start_async(self, command, become, env):
        payload = self._warm_payload(command)
        how = (" as become user" if become else "") + (", warm" if payload else "")
        display.vvv("ASYNC job %s of %s (limit %ss)%s" % (command.base_jid, command.module_path, command.limit, how),
                    host=self._host())
        isolation = specs.plain(self.get_option("task_isolation"))
        try:
            started = self._session.start_async(command, become, env, self._cwd(), payload, isolation)
        except InterpreterMissing:
            # The job fails as vanilla's would, from the module's shebang.
            started = self._session.start_async(command, become, env, self._cwd())
        self._async_jobs[started["ansible_job_id"]] = become
        result = async_jobs.started_result(started["ansible_job_id"], started["results_file"], command)
        return 0, to_bytes(json.dumps(result)), b""

    def _warm_payload(self, command):
        """The payload of the module file `command` runs, if the job can
        start warm: a new-style Python module we uploaded in this task,
        run by its one-word shebang interpreter with no args file."""
        uploaded, self._uploaded_modules = self._uploaded_modules, {}
        payload = uploaded.get(command.module_path)
        if payload is None or command.args_path or len(payload.interpreter.split()) > 1:
            return None
        if command.argv is not None and command.argv != [payload.interpreter, command.module_path]:
            return None
        return payload

    # -- async jobs, for the strategy's poll and mitogen_async_status ----------

    def wait_async_job(self, jid: str, timeout: float):
        """The pushed job file reading of a job this connection started, or
        None (not ours, or nothing pushed in time: read the job file)."""
        become = self._async_jobs.get(jid)
        if become is None or self._session is None:
            return None
        with self._errors():
            return self._session.wait_async(specs.plain(jid), become, timeout)

    @in_session
    def async_status(self, jid: str, become: bool, async_dir: str) -> dict:
        with self._errors():
            return self._session.async_status(specs.plain(jid), become, specs.plain(async_dir))

    @in_session
    def async_cleanup(self, jid: str, become: bool | None, async_dir: str) -> dict:
        """Remove a job file; `become` None means as the job was started."""
        if become is None:
            become = self._async_jobs.get(jid, False)
        with self._errors():
            return self._session.async_cleanup(specs.plain(jid), become, specs.plain(async_dir))

    # -- ansible_svc.accel.doctor ---------------------------------------------

    def doctor_spec(self) -> dict:
        """The spec this connection's tasks use now, become included. It
        holds the passwords: for ``doctor.chain`` and ``doctor.addresses``,
        never to be shown whole."""
        self._connect()
        return self._session.spec

    def doctor_probe(self, python: str | None, calls: int) -> dict:
        """The interpreter's facts and `calls` timed no-op calls
        (``Session.probe``), as the task's become settings want."""
        self._connect()
        with self._errors():
            return self._session.probe(self.become is not None, python, calls)

    def mux_report(self, addresses: list) -> dict:
        """What the mux holds (``Session.mux_report``)."""
        self._connect()
        with self._errors():
            return self._session.mux_report(addresses)

    @in_session
    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        in_path, out_path = self._path(in_path), self._path(out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._host())
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % in_path)
        with self._errors():
            try:
                self._session.put_file(in_path, out_path)
            except InterpreterMissing as exc:
                self._without_python(exc).put_file(in_path, out_path)
                return
        payload = ansiballz.parse_file(in_path)
        if payload is not None:
            self._uploaded_modules[out_path] = payload

    @in_session
    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        in_path, out_path = self._path(in_path), self._path(out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._host())
        with self._errors():
            try:
                self._session.fetch_file(in_path, out_path)
            except InterpreterMissing as exc:
                self._without_python(exc).fetch_file(in_path, out_path)

    def _without_python(self, why):
        """Ansible's own connection plugin for this host, for commands and
        files while the target has no Python (vanilla ``raw`` works there,
        so it must work here too)."""
        if self._vanilla is None:
            display.vvv("no Python on the target yet (%s): using %s for commands and files" % (why, self.vanilla_plugin), host=self._host())
        return self._vanilla_connection()

    def _vanilla_connection(self):
        """Ansible's own connection plugin for this transport, with our
        current options and become plugin."""
        options = {k: v for k, v in self._options.items() if v is not None}
        if "ssh_args" in options and not self.switched_off:
            # As for our own connections: no master that outlives the run.
            options["ssh_args"] = shlex.join(specs.split_ssh_args(options["ssh_args"]))
        if self._vanilla is None:
            self._vanilla = strategy.load_vanilla_connection(self.vanilla_plugin, self._play_context)
            if self._vanilla is None:
                raise AnsibleError("ansible-svc runs this operation through %s (the target has no Python yet, or "
                                   "ANSIBLE_SVC_DISABLE is set), which is not installed" % self.vanilla_plugin)
            become = self.become
            self._vanilla.set_become_plugin(become._plugin if isinstance(become, BecomeRequest) else become)
        self._vanilla.set_options(direct=options)
        return self._vanilla

    def _close_sessions(self):
        """Return the session's interpreters and drop the vanilla fallback
        (it was set up with the previous settings)."""
        if self._vanilla is not None:
            self._vanilla.close()
            self._vanilla = None
        if self._session is not None:
            session, self._session = self._session, None
            session.close()

    def close(self):
        if self.switched_off:
            self._close_sessions()
            self._connected = False
            return
        try:
            self._close_sessions()
        finally:
            mux_client.detach(at_exit=mux_client.in_worker())
        self._connected = False

    def reset(self):
        if self.switched_off:
            return self._vanilla_connection().reset()
        if self._session is None:
            self._connect()
        try:
            with self._errors():
                self._session.reset()
        finally:
            self._session = None
            self._connected = False
            mux_client.detach()

    # -- helpers ---------------------------------------------------------------

    def _cwd(self):
        """Where commands and modules run: ``self.cwd`` when Ansible set
        one; else the worker's cwd on the controller, or (None) the login
        directory elsewhere."""
        if self.cwd:
            return specs.plain(to_text(self.cwd))
        return os.getcwd() if self.on_controller else None

    def _path(self, path):
        """A path of ``put_file``/``fetch_file`` as the transfer uses it;
        on the controller as vanilla ``local`` resolves it (``~``, env
        variables, relative to the cwd)."""
        path = specs.plain(to_text(path))
        return unfrackpath(path, basedir=self.cwd) if self.on_controller else path

    def _host(self):
        return self._session.spec.get("host") if self._session else None

    def _errors(self):
        return _ErrorMapper(self)


class _ErrorMapper(object):
    """Translate session failures into Ansible's exceptions (STYLE table)."""

    def __init__(self, connection):
        self.connection = connection

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, (SessionError, mux_client.MuxUnavailable)):
            return False
        host = self.connection._host()
        if isinstance(exc, AuthenticationFailed):
            raise AnsibleAuthenticationFailure("Failed to authenticate to %s: %s" % (host, exc)) from exc
        if isinstance(exc, (TargetUnreachable, mux_client.MuxUnavailable)):
            self.connection._session and self.connection._session.forget()
            raise AnsibleConnectionFailure("Failed to connect to %s: %s" % (host, exc)) from exc
        if isinstance(exc, BecomeFailed):
            raise AnsibleError("Become failed on %s: %s" % (host, exc)) from exc
        if isinstance(exc, RemoteError):
            raise AnsibleError("Error on %s: %s" % (host, exc)) from exc
        raise AnsibleError("ansible-svc: %s" % exc) from exc
