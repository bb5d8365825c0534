"""ConnectionService: the cache of target interpreters.

Runs in the mux. Global state: the cache of this one service instance, and
the random key it digests passwords with (made when the mux starts, never
sent anywhere).

How it works:

1. A worker calls ``get(spec)`` with a plain-dict spec built from its
   connection plugin's options for the current task (or loop item):
   ``ansible_svc.controller.spec``.
2. Interpreters are cached per *layer*: the login layer is everything that
   makes a login different (transport, address, account, key, ssh options,
   a container's exec command line, and a digest of the password); a become layer adds the become settings
   (method, user, exe, flags, and a digest of the become password). A layer
   holds one interpreter per command line it was started with.
3. A request names its interpreter as Ansible does (``/usr/bin/python3``,
   ``python3``, a venv's python, or None for "any, e.g. to run a shell
   command"). The same string always gets the same interpreter. Another
   string reuses a running interpreter only when it resolves on the target
   (PATH lookup, symlinks kept) to that interpreter's own ``sys.executable``:
   then a module could not tell them apart (same executable, same
   ``sys.prefix``). A venv's python, or ``python3.11`` beside ``python3``,
   gets its own interpreter, as vanilla would run it.
4. The first caller for a layer starts the interpreter (for become, from the
   login interpreter of the same request); concurrent callers wait on the
   layer's lock, so a host is connected once.
5. Callers get the context to address and a reference; ``put`` returns it.
   A context that disconnects is dropped from the cache, so the next ``get``
   builds a new one: a dead interpreter is rebuilt transparently.
6. ``reset(spec)`` (``meta: reset_connection``) shuts down every interpreter
   of the spec's address and account, whatever credentials reached it.

Because passwords are part of the layer (as HMAC digests under a per-run
key: nothing stored says anything about a password), a wrong password never
rides on an interpreter that a right one started: it starts its own login or
become, which fails as vanilla's would.

Errors are returned, not raised, as ``{"error": {"kind", "msg"}}`` so the
worker can map them to Ansible's UNREACHABLE / FAILED exactly.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import logging
import secrets
import shlex
import threading

import mitogen.core
import mitogen.parent
import mitogen.service
import mitogen.doas
import mitogen.ssh
import mitogen.su
import mitogen.sudo

from ansible_svc.mux import become as become_plugin, containers, proxied
from ansible_svc.rpc import call_async
from ansible_svc.target import commands, runner, ssh

LOG = logging.getLogger(__name__)

#: Become methods mitogen starts with connection classes of its own. Any
#: other become plugin comes with its own command line (``become.start``).
NATIVE_BECOME = ("sudo", "su", "doas")


#: ssh keepalive (ServerAliveInterval, ServerAliveCountMax) when the spec
#: names none (svc_ssh's options default to the same): a silently dead
#: connection is found within 45 s. The user's own ServerAlive* ssh options
#: replace both (``ssh.SshConnection``).
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT = 3

#: Interpreter started when neither the task nor the inventory names one.
DEFAULT_PYTHON = "python3"

#: Bound on the small calls made to a fresh or cached interpreter while
#: connecting (describe, resolve an interpreter path): a wedged target must
#: not hold a pool thread and the host's connect lock forever.
PROBE_TIMEOUT = 30.0


def probe(context, fn, *args):
    """``context.call`` with a time limit."""
    return call_async(context, fn, *args).get(timeout=PROBE_TIMEOUT).unpickle()


def address_key(spec: dict) -> tuple:
    """Where and as whom a login goes: what ``reset`` shuts down."""
    return (spec["transport"], spec.get("host"), spec.get("port"), spec.get("user"))


def about(spec: dict) -> dict:
    """What a listing of the cache may show of an interpreter's spec: where
    and as whom it logs in, through which bastions, with which become method.
    Never a password, key or ssh argument."""
    become = spec.get("become")
    user = spec.get("user")
    if spec["transport"] == "local":
        user = getpass.getuser()  # the mux's, which is the controller's, as vanilla local's
    return {
        "transport": spec["transport"],
        "host": spec.get("host"),
        "port": spec.get("port"),
        "user": user,
        "via": [{"host": hop["host"], "port": hop["port"], "user": hop["user"]} for hop in spec.get("via") or ()],
        "become": {"method": become.get("method"), "user": become.get("user")} if become else None,
    }


class Entry(object):
    """One cached interpreter, who holds it, and :func:`about` its spec."""

    __slots__ = ("context", "info", "refs", "about")

    def __init__(self, context, info, shown=None):
        self.context = context
        self.info = info
        self.refs = 0
        self.about = shown or {}


class BastionError(Exception):
    """A bastion on the way to the host could not be reached."""


def classify(exc: BaseException) -> str:
    """Map a connection failure to the Ansible outcome it must produce."""
    if isinstance(exc, BastionError):
        return "unreachable"
    if isinstance(exc, (mitogen.sudo.PasswordError, mitogen.su.PasswordError, mitogen.doas.PasswordError)):
        return "become"
    if isinstance(exc, mitogen.ssh.PasswordError):
        return "auth"
    if isinstance(exc, mitogen.ssh.HostKeyError):
        return "unreachable"
    if isinstance(exc, (mitogen.core.StreamError, mitogen.core.ChannelError, mitogen.core.TimeoutError, EOFError, OSError)):
        return "unreachable"
    return "failed"


def interpreter_missing(exc: BaseException, python: str) -> bool:
    """Whether the login failed because `python` does not exist there (the
    target was reached: its shell, or exec, said so)."""
    msg = str(exc)
    words = shlex.split(python)
    lower = msg.lower()
    return bool(words) and words[0] in msg and ("not found" in lower or "no such file or directory" in lower)


class ConnectionService(mitogen.service.Service):
    """Connect once per layer and interpreter, share it between workers.

    Entries are keyed ``(layer, started_as)``; aliases map
    ``(layer, requested interpreter)`` to an entry key (see the module
    docstring for when a request may reuse another spelling).
    """

    def __init__(self, router):
        super().__init__(router)
        #: HMAC key for password digests in cache keys; lives in this
        #: process only, so the digests cannot be checked against guesses.
        self._digest_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._entries: dict[tuple, Entry] = {}
        self._aliases: dict[tuple, tuple] = {}
        self._layer_locks: dict[tuple, threading.Lock] = {}

    # -- keys ---------------------------------------------------------------

    def _digest(self, secret) -> str | None:
        if not secret:
            return None
        return hmac.new(self._digest_key, str(secret).encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()

    def login_layer(self, spec: dict) -> tuple:
        """Everything that grants a login, passwords as digests, and the
        bastions it goes through."""
        return (
            address_key(spec), spec.get("identity_file"), spec.get("ssh_path"), tuple(spec.get("ssh_args") or ()),
            spec.get("check_host_keys"), self._digest(spec.get("password")),
            tuple((hop["host"], hop["port"], hop["user"]) for hop in spec.get("via") or ()),
        ) + ((tuple(containers.exec_argv(spec)),) if spec["transport"] in containers.KINDS else ())

    def become_layer(self, spec: dict) -> tuple:
        """The login layer plus everything that grants the become account."""
        become = spec["become"]
        return self.login_layer(spec) + (
            (become.get("method"), become.get("user"), become.get("exe"), become.get("flags"), become.get("command"),
             self._digest(become.get("password"))),
        )

    def _layer(self, spec: dict) -> tuple:
        return self.become_layer(spec) if spec.get("become") else self.login_layer(spec)

    # -- the cache ------------------------------------------------------------

    def _layer_lock(self, layer):
        with self._lock:
            return self._layer_locks.setdefault(layer, threading.Lock())

    def _by_alias(self, alias):
        with self._lock:
            key = self._aliases.get(alias)
            return self._entries.get(key) if key else None

    def _add(self, key, alias, entry):
        with self._lock:
            self._entries[key] = entry
            self._aliases[alias] = key
        mitogen.core.listen(entry.context, "disconnect", lambda: self._forget(key, entry.context))

    def _forget(self, key, context):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.context is not context:
                return
            del self._entries[key]
            for alias in [a for a, k in self._aliases.items() if k == key]:
                del self._aliases[alias]
        LOG.info("disconnected: %s", context.name)

    def _interpreter(self, layer, python, default, start, spec):
        """The entry of `layer` for interpreter `python` (None: any), reusing
        a running one that is the same executable, else ``start(command)``.
        `spec` is the request's (for the cache listing, :func:`about`)."""
        alias = (layer, python)
        entry = self._by_alias(alias)
        if entry is not None:
            return entry
        with self._layer_lock(layer):
            entry = self._by_alias(alias)
            if entry is not None:
                return entry
            with self._lock:
                running = [(k, e) for k, e in self._entries.items() if k[0] == layer]
            for key, candidate in running:
                if python is None or probe(candidate.context, commands.resolve_python, python) == candidate.info["python"]:
                    with self._lock:
                        self._aliases[alias] = key
                    return candidate
            started_as = python or default
            context = start(started_as)
            try:
                info = probe(context, runner.start)
            except mitogen.core.Error:
                context.shutdown()
                raise
            entry = Entry(context, info, about(spec))
            self._add((layer, started_as), alias, entry)
            LOG.info("connected: %s (python %s, pid %s)", context.name, info["python"], info["pid"])
            return entry

    def _login(self, spec):
        """The login interpreter of `spec`, through its bastions (each one's
        interpreter shared by every host behind it)."""
        via = None
        hops = spec.get("via") or []
        for depth, hop in enumerate(hops):
            # A bastion logs in with the host's ssh settings, never its
            # password, and runs the default Python.
            hop_spec = dict(spec, host=hop["host"], port=hop["port"], user=hop["user"], password=None,
                            via=hops[:depth], python=None, default_python=None, become=None)
            try:
                via = self._interpreter(self.login_layer(hop_spec), None, DEFAULT_PYTHON,
                                        lambda p, h=hop_spec, v=via: self._start_login(h, p, v), hop_spec).context
            except Exception as exc:
                raise BastionError("bastion %s@%s:%s: %s" % (hop["user"], hop["host"], hop["port"], exc)) from exc
        default = spec.get("default_python") or DEFAULT_PYTHON
        return self._interpreter(self.login_layer(spec), spec.get("python"), default,
                                 lambda p: self._start_login(spec, p, via), dict(spec, become=None))

    def _become(self, spec, login):
        # The become interpreter runs the login interpreter's executable
        # unless the request names one: sudo's PATH may differ from ssh's.
        default = login.info["python"]
        return self._interpreter(self.become_layer(spec), spec.get("python"), default,
                                 lambda p: self._start_become(spec, login.context, p), spec)

    def _start_login(self, spec, python, via=None):
        """Start the login interpreter: locally, in a container, over ssh
        from the mux, or over ssh from the bastion context `via`."""
        timeout = spec.get("timeout") or 30
        if spec["transport"] == "local":
            return self.router.local(python_path=shlex.split(python), connect_timeout=timeout, remote_name="ansible-svc")
        if spec["transport"] in containers.KINDS:
            return containers.connect(self.router, spec, python, timeout)
        kwargs = dict(
            hostname=spec["host"],
            port=spec.get("port"),
            username=spec.get("user"),
            identity_file=spec.get("identity_file"),
            # Vanilla ssh adds neither; -C comes from ssh_args, as in vanilla.
            identities_only=False,
            compression=False,
            password=spec.get("password"),
            password_prompt=spec.get("password_prompt"),
            ssh_path=spec.get("ssh_path") or "ssh",
            ssh_args=list(spec.get("ssh_args") or ()),
            keepalive_interval=spec.get("keepalive_interval") or KEEPALIVE_INTERVAL,
            keepalive_count=spec.get("keepalive_count") or KEEPALIVE_COUNT,
            check_host_keys=spec.get("check_host_keys") or "enforce",
            python_path=shlex.split(python),
        )
        if via is not None:
            return proxied.connect(self.router, via, "ssh", kwargs, timeout)
        return ssh.connect(self.router, connect_timeout=timeout, remote_name="ansible-svc", **kwargs)

    def _start_become(self, spec, login, python):
        become = spec["become"]
        timeout = spec.get("timeout") or 30
        if become.get("command"):
            return become_plugin.start(self.router, login, become, python, timeout)
        method = become["method"]
        if method not in NATIVE_BECOME:
            raise ValueError("become method %r came without its command line" % (method,))
        kwargs = dict(
            via=login,
            username=become.get("user") or "root",
            password=become.get("password"),
            python_path=shlex.split(python),
            connect_timeout=timeout,
            remote_name="ansible-svc",
        )
        if method == "sudo":
            kwargs.update(sudo_path=become.get("exe") or "sudo", sudo_args=shlex.split(become.get("flags") or ""))
        elif method == "su":
            kwargs.update(su_path=become.get("exe") or "su")
        else:
            kwargs.update(doas_path=become.get("exe") or "doas")
        return getattr(self.router, method)(**kwargs)

    def summary(self, addresses=None) -> dict:
        """For the doctor (``ansible_svc.mux.doctor``): how many interpreters
        are cached, and those that log in at one of `addresses` (tuples
        ``(transport, host, port)``; None: all): :func:`about` their spec,
        their Python, the interpreter strings they were asked for, and the
        references held. Read-only, and holds no secret."""
        with self._lock:
            entries = list(self._entries.items())
            aliases = list(self._aliases.items())
        listed = []
        for key, entry in entries:
            shown = entry.about
            if addresses is not None and (shown.get("transport"), shown.get("host"), shown.get("port")) not in addresses:
                continue
            version = entry.info.get("version") or ()
            listed.append(dict(
                shown,
                name=entry.context.name,
                python=entry.info.get("python"),
                version=".".join(str(part) for part in version),
                pid=entry.info.get("pid"),
                started_as=key[1],
                requested=sorted(alias[1] or "(any)" for alias, target in aliases if target == key),
                refs=entry.refs,
            ))
        return {"count": len(entries), "listed": listed}

    # -- the service ----------------------------------------------------------

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"spec": dict})
    def get(self, spec):
        """Return ``{"context", "info"}`` or ``{"error"}``."""
        try:
            login = self._login(spec)
        except Exception as exc:
            kind = classify(exc)
            # Never behind a bastion: the worker's fallback for hosts without
            # Python (vanilla ssh) would go around it.
            if kind == "unreachable" and not spec.get("via") and \
                    interpreter_missing(exc, spec.get("python") or spec.get("default_python") or DEFAULT_PYTHON):
                kind = "nopython"
            return self._failure(spec, exc, kind)
        try:
            entry = self._become(spec, login) if spec.get("become") else login
        except Exception as exc:
            # The login works, so this is privilege escalation failing (wrong
            # password, sudoers, timeout at the prompt): FAILED, as vanilla.
            # mitogen reports a proxied sudo's PasswordError as a plain
            # StreamError, so the type alone cannot tell.
            return self._failure(spec, exc, "become")
        with self._lock:
            entry.refs += 1
        return {"context": entry.context, "info": entry.info}

    @staticmethod
    def _failure(spec, exc, kind):
        LOG.info("connect failed for %s: %s", spec.get("host"), exc)
        return {"error": {"kind": kind, "msg": str(exc), "type": type(exc).__name__}}

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.no_reply()
    @mitogen.service.arg_spec({"spec": dict})
    def put(self, spec):
        """Return a reference taken by ``get`` for the same spec."""
        entry = self._by_alias((self._layer(spec), spec.get("python")))
        with self._lock:
            if entry is not None and entry.refs > 0:
                entry.refs -= 1

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"spec": dict})
    def reset(self, spec):
        """Shut down every interpreter of `spec`'s address and account
        (``meta: reset_connection``)."""
        address = address_key(spec)
        with self._lock:
            doomed = [(k, e) for k, e in self._entries.items() if k[0][0] == address]
            for key, _entry in doomed:
                del self._entries[key]
            for alias in [a for a, k in self._aliases.items() if k[0][0] == address]:
                del self._aliases[alias]
        # Become interpreters first: they live inside the login ones. Do not
        # wait for the goodbye: a wedged interpreter must not wedge the reset.
        for _key, entry in sorted(doomed, key=lambda item: -len(item[0][0])):
            try:
                entry.context.shutdown()
            except mitogen.core.Error as exc:
                LOG.debug("reset: %s: %s", entry.context.name, exc)
        return len(doomed)
