"""ConnectionService: the cache of target interpreters.

Runs in the mux. Global state: the cache of this one service instance, keyed
by everything that makes two connections different (transport, address,
account, ssh options, interpreter, become settings), never by secrets.

How it works:

1. A worker calls ``get(spec)`` with a plain-dict spec built from its
   connection plugin's options (``ansible_svc.controller.spec``).
2. The first caller for a key starts the login interpreter (ssh or local),
   and for become a second interpreter from it (sudo, su); concurrent callers
   for the same key wait on a per-key lock, so a host is connected once.
3. Callers get the context to address and a reference; ``put`` returns it.
   A context that disconnects is dropped from the cache, so the next
   ``get`` builds a new one: a dead interpreter is rebuilt transparently.
4. ``reset(spec)`` (``meta: reset_connection``) shuts the entry down.

Errors are returned, not raised, as ``{"error": {"kind", "msg"}}`` so the
worker can map them to Ansible's UNREACHABLE / FAILED exactly.
"""

from __future__ import annotations

import logging
import shlex
import threading

import mitogen.core
import mitogen.parent
import mitogen.service
import mitogen.ssh
import mitogen.su
import mitogen.sudo

from ansible_svc.target import commands

LOG = logging.getLogger(__name__)

#: Become methods we start as a second interpreter, and mitogen's name for
#: each. Others are refused with a clear error rather than half-supported.
BECOME_METHODS = {"sudo": "sudo", "su": "su"}


#: Interpreter started when neither the task nor the inventory names one.
DEFAULT_PYTHON = "python3"

#: Bound on the small calls made to a fresh or cached interpreter while
#: connecting (describe, resolve an interpreter path): a wedged target must
#: not hold a pool thread and the host's connect lock forever.
PROBE_TIMEOUT = 30.0


def probe(context, fn, *args):
    """``context.call`` with a time limit."""
    return context.call_async(fn, *args).get(timeout=PROBE_TIMEOUT).unpickle()


def base_key(spec: dict) -> tuple:
    """Everything that distinguishes a login, minus secrets and python."""
    return (
        spec["transport"], spec.get("host"), spec.get("port"), spec.get("user"),
        spec.get("identity_file"), spec.get("ssh_path"), tuple(spec.get("ssh_args") or ()),
        spec.get("check_host_keys"),
    )


def become_key(spec: dict):
    become = spec.get("become")
    if not become:
        return None
    return (become.get("method"), become.get("user"), become.get("exe"), become.get("flags"))


class Entry(object):
    """One cached interpreter and who holds it."""

    __slots__ = ("context", "info", "refs")

    def __init__(self, context, info):
        self.context = context
        self.info = info
        self.refs = 0


def classify(exc: BaseException) -> str:
    """Map a connection failure to the Ansible outcome it must produce."""
    if isinstance(exc, (mitogen.sudo.PasswordError, mitogen.su.PasswordError)):
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
    return bool(words) and words[0] in msg and ("not found" in msg or "No such file or directory" in msg)


class ConnectionService(mitogen.service.Service):
    """Connect once per key, share the interpreter between workers.

    Entries are keyed ``(base_key, become_key, real interpreter path)``.
    Requests name an interpreter as Ansible does (``/usr/bin/python3``,
    ``python3``, a discovered ``/usr/bin/python3.11``, or None for "any"); the
    alias table maps each spelling to the entry whose interpreter it really
    is, so one host gets one login interpreter in the common case.
    """

    def __init__(self, router):
        super().__init__(router)
        self._lock = threading.Lock()
        self._entries: dict[tuple, Entry] = {}
        self._aliases: dict[tuple, tuple] = {}
        self._key_locks: dict[tuple, threading.Lock] = {}

    def _key_lock(self, key):
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

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

    def _same_login(self, base, become):
        with self._lock:
            return [(k, e) for k, e in self._entries.items() if k[0] == base and k[1] == become]

    def _start(self, key_prefix, alias, start, python):
        context = start(python)
        try:
            info = probe(context, commands.describe)
        except mitogen.core.Error:
            context.shutdown()
            raise
        entry = Entry(context, info)
        self._add(key_prefix + (info["python_real"],), alias, entry)
        LOG.info("connected: %s (python %s, pid %s)", context.name, info["python"], info["pid"])
        return entry

    def _cached(self, alias, key_prefix, create):
        """The entry for `alias`, or `create()` it under the key's lock."""
        entry = self._by_alias(alias)
        if entry is not None:
            return entry
        with self._key_lock(key_prefix):
            return self._by_alias(alias) or create()

    def _login(self, spec):
        base, python = base_key(spec), spec.get("python")
        alias = (base, None, python)

        def create():
            # Another spelling of an interpreter we already run? Reuse it.
            for key, candidate in self._same_login(base, None):
                real = key[2] if python is None else probe(candidate.context, commands.resolve_python, python)
                if real == key[2]:
                    with self._lock:
                        self._aliases[alias] = key
                    return candidate
            start_with = python or spec.get("default_python") or DEFAULT_PYTHON
            return self._start((base, None), alias, lambda p: self._start_login(spec, p), start_with)

        return self._cached(alias, (base, None), create)

    def _become(self, spec, login):
        base, become = base_key(spec), become_key(spec)
        alias = (base, become, login.info["python_real"])
        start = lambda p: self._start_become(spec, login.context, p)  # noqa: E731
        return self._cached(alias, (base, become), lambda: self._start((base, become), alias, start, login.info["python"]))

    def _start_login(self, spec, python):
        common = dict(python_path=shlex.split(python), connect_timeout=spec.get("timeout") or 30, remote_name="ansible-svc")
        if spec["transport"] == "local":
            return self.router.local(**common)
        return self.router.ssh(
            hostname=spec["host"],
            port=spec.get("port"),
            username=spec.get("user"),
            identity_file=spec.get("identity_file"),
            # Vanilla ssh adds neither; -C comes from ssh_args, as in vanilla.
            identities_only=False,
            compression=False,
            password=spec.get("password"),
            ssh_path=spec.get("ssh_path") or "ssh",
            ssh_args=list(spec.get("ssh_args") or ()),
            check_host_keys=spec.get("check_host_keys") or "enforce",
            **common,
        )

    def _start_become(self, spec, login, python):
        become = spec["become"]
        method = BECOME_METHODS.get(become["method"])
        if method is None:
            raise ValueError(
                "become method %r is not supported by ansible-svc (supported: %s); "
                "use a vanilla connection for this host" % (become["method"], ", ".join(sorted(BECOME_METHODS)))
            )
        kwargs = dict(
            via=login,
            username=become.get("user") or "root",
            password=become.get("password"),
            python_path=[python],
            connect_timeout=spec.get("timeout") or 30,
        )
        if method == "sudo":
            kwargs.update(sudo_path=become.get("exe") or "sudo", sudo_args=shlex.split(become.get("flags") or ""))
        else:
            kwargs.update(su_path=become.get("exe") or "su")
        return getattr(self.router, method)(**kwargs)

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"spec": dict})
    def get(self, spec):
        """Return ``{"context", "info"}`` or ``{"error"}``."""
        try:
            login = self._login(spec)
        except Exception as exc:
            kind = classify(exc)
            if kind == "unreachable" and interpreter_missing(exc, spec.get("python") or spec.get("default_python") or DEFAULT_PYTHON):
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
        """Return a reference taken by ``get``."""
        with self._lock:
            for key, entry in self._entries.items():
                if key[0] == base_key(spec) and key[1] == become_key(spec) and entry.refs > 0:
                    entry.refs -= 1
                    break

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"spec": dict})
    def reset(self, spec):
        """Shut down every interpreter of `spec`'s login (``reset_connection``)."""
        base = base_key(spec)
        with self._lock:
            doomed = [(k, e) for k, e in self._entries.items() if k[0] == base]
            for key, _ in doomed:
                del self._entries[key]
            for alias in [a for a, k in self._aliases.items() if k[0] == base]:
                del self._aliases[alias]
        # Become interpreters first: they live inside the login ones. Do not
        # wait for the goodbye: a wedged interpreter must not wedge the reset.
        for _, entry in sorted(doomed, key=lambda item: item[0][1] is None):
            try:
                entry.context.shutdown()
            except mitogen.core.Error as exc:
                LOG.debug("reset: %s: %s", entry.context.name, exc)
        return len(doomed)

