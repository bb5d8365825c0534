"""Run Ansible new-style Python modules inside a target interpreter.

Runs in target interpreters. Global state: ``_PAYLOADS``, the module payloads
(AnsiballZ zips) this interpreter has received, with their sources compiled
once; and ``_PAYLOAD_DIR``, a private directory holding each zip once on disk
for modules that re-execute themselves (``respawn_module``).

How a task runs:

1. The worker pushed the module's zip through the mux (``filecache``); the
   runner takes it from the local cache, by content hash, without a round
   trip when this interpreter has seen it before.
2. A forked child runs the task: the one forked ahead while the
   interpreter was idle (see :class:`_Child`), or a new one. It gets fresh
   stdio pipes, the task's environment and working directory, a meta path
   finder that serves ``ansible.*`` and ``ansible_collections.*`` from the
   zip (compiled code shared from the parent), and then runs the module
   exactly as the AnsiballZ wrapper would: through
   ``ansible.module_utils._internal._ansiballz._loader``.
3. The parent collects stdout, stderr and the exit status, and pushes them as
   the job's result to the mux's JobResultService.

Forking keeps the long-lived interpreter untouched by module code: globals,
monkey-patches, ``sys.exit``, crashes and leaked threads die with the child.
"""

import atexit
import errno
import gc
import importlib
import importlib.abc
import importlib.util
import logging
import os
import pickle
import select
import signal
import sys
import tempfile
import threading
import time
import types
import warnings
import zipfile
import zipimport
import io

import mitogen.core
import mitogen.service

from ansible_svc.rpc import call_service_async
from ansible_svc.target import commands, filecache

#: How long a worker's pushed payload may take to arrive from the mux.
PAYLOAD_TIMEOUT = 120.0

#: How long the mux may take to accept a job's result.
PUSH_TIMEOUT = 60.0

#: After the module's process exits, how long to keep reading output that a
#: daemon it left behind may still hold open (vanilla ssh would hang here).
OUTPUT_GRACE = 2.0

#: Namespaces the payload owns, as the AnsiballZ zip does on sys.path[0].
OWNED_PREFIXES = ("ansible", "ansible_collections")

#: Imported once into the long-lived interpreter from the first payload that
#: has them, so that forked tasks skip importing them (~40 ms a task). Every
#: new-style module runs through the loader, which imports module_utils.basic.
PRELOAD = ("ansible.module_utils._internal._ansiballz._loader",)

#: Also imported once, from each payload that ships them: the core
#: module_utils its module needs (never collections' code, never modules).
PRELOAD_PREFIX = "ansible.module_utils."

#: Name prefix of the per-interpreter payload dirs (then pid and random).
PAYLOAD_DIR_PREFIX = "ansible-svc-payloads-"

_PAYLOADS = {}
_PAYLOAD_DIR = None
#: Module processes running now (pid -> job id), killed if the connection
#: goes or the worker cancels the job.
_RUNNING = {}
#: The job running inline in this interpreter, if any.
_INLINE_JOB = []
#: Not empty once this interpreter is shutting down.
_ENDING = []
#: SIGHUP and SIGTERM if this interpreter started with them ignored (a run
#: under ``nohup``): module children keep that, as vanilla's inherit it.
_INHERITED_SIGNALS = {}
#: The child forked ahead of the next forked task, if any (see _Child).
_SPARE = None
#: Modules imported into this interpreter by _preload: name -> the source
#: they were loaded from (None: not a payload file, e.g. a namespace).
_PRELOADED = {}


class Payload(object):
    """One AnsiballZ zip: its sources by module name, compiled lazily once."""

    def __init__(self, router, key, data):
        self.key = key
        self.path = _write_payload(router, key, data)
        self.entries = {}
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if not name.endswith(".py"):
                    continue
                parts = name[:-3].split("/")
                is_pkg = parts[-1] == "__init__"
                if is_pkg:
                    parts.pop()
                self.entries[".".join(parts)] = (name, zf.read(name), is_pkg)
        self._code = {}

    def code(self, fullname):
        code = self._code.get(fullname)
        if code is None:
            name, source, _ = self.entries[fullname]
            code = compile(source, os.path.join(self.path, name), "exec", dont_inherit=True)
            self._code[fullname] = code
        return code

    def warm(self):
        """Compile every source in the parent, so forked children share it."""
        for fullname in self.entries:
            self.code(fullname)


class PayloadFinder(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Serves the payload's modules, and owns its namespaces as a zip would."""

    def __init__(self, payload):
        self.payload = payload

    def find_spec(self, fullname, path=None, target=None):
        entry = self.payload.entries.get(fullname)
        if entry is None:
            return None
        name, _, is_pkg = entry
        spec = importlib.util.spec_from_loader(fullname, self, origin=os.path.join(self.payload.path, name), is_package=is_pkg)
        spec.has_location = True
        if is_pkg:
            # Submodules come only from the payload, as from the zip.
            spec.submodule_search_locations = []
        return spec

    def is_package(self, fullname):
        return self.payload.entries[fullname][2]

    def get_source(self, fullname):
        return self.payload.entries[fullname][1].decode("utf-8")

    def get_code(self, fullname):
        return self.payload.code(fullname)

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)


def _write_payload(router, key, data):
    """Keep one copy of the zip on disk, in a private per-interpreter dir.

    The directory goes when the interpreter's broker shuts down (mitogen
    children end with os._exit, so atexit alone would never run). Its name
    carries the interpreter's pid, so directories of interpreters that were
    killed are removed by the next interpreter of the same account.
    """
    global _PAYLOAD_DIR
    if _PAYLOAD_DIR is None:
        _remove_stale_payload_dirs()
        _PAYLOAD_DIR = tempfile.mkdtemp(prefix="%s%d-" % (PAYLOAD_DIR_PREFIX, os.getpid()))
        remove = lambda d=_PAYLOAD_DIR, pid=os.getpid(): _remove_payload_dir(d, pid)  # noqa: E731
        mitogen.core.listen(router.broker, "shutdown", remove)
        atexit.register(remove)
    path = os.path.join(_PAYLOAD_DIR, os.path.basename(key))
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def _remove_stale_payload_dirs():
    """Remove this account's payload dirs whose interpreter is gone."""
    import shutil
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(PAYLOAD_DIR_PREFIX):
            continue
        path = os.path.join(base, name)
        try:
            pid = int(name[len(PAYLOAD_DIR_PREFIX):].split("-", 1)[0])
            if os.stat(path).st_uid != os.getuid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, OSError):
            continue


def _remove_payload_dir(path, pid):
    if os.getpid() != pid:
        return  # a forked child exiting normally must not remove it
    import shutil
    shutil.rmtree(path, ignore_errors=True)


_WATCHING = []

#: Held while the interpreter's state changes (payloads arriving and their
#: imports, inline runs) and while it forks: a child must never copy a
#: half-done change. Task processes then run, and are waited for, unlocked.
_STATE_LOCK = threading.RLock()


def set_up(router):
    """Clean up running modules and payloads however this interpreter ends.
    Main thread only (signal handlers); before the service pool exists.

    An orderly end is the broker's shutdown: modules are hung up on first,
    then the pool stops and joins its threads (which wait for the modules
    they run), so the pool must be created after this. But when the login
    interpreter goes first, sshd hangs up its session and sudo passes SIGHUP
    or SIGTERM on to a become interpreter before its own shutdown could run.
    """
    if _WATCHING:
        return
    _WATCHING.append(router)
    mitogen.core.listen(router.broker, "shutdown", _kill_running)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        if signal.getsignal(sig) == signal.SIG_IGN:
            _INHERITED_SIGNALS[sig] = signal.SIG_IGN
        signal.signal(sig, _on_hangup)


def _on_hangup(signum, frame):
    _kill_running()
    if _PAYLOAD_DIR is not None:
        _remove_payload_dir(_PAYLOAD_DIR, os.getpid())
    os._exit(128 + signum)


def get_payload(router, key):
    with _STATE_LOCK:
        return _get_payload(router, key)


def _get_payload(router, key):
    payload = _PAYLOADS.get(key)
    if payload is None:
        service = filecache.get_service(router)
        data = service.get_bounded(key, PAYLOAD_TIMEOUT, given_up=_ending)
        payload = Payload(router, key, bytes(data))
        payload.warm()
        # The task puts the zip first on sys.path: every import it makes
        # (stdlib ones too) asks the zip first. Read its directory once
        # here rather than in every task.
        sys.path_importer_cache[payload.path] = zipimport.zipimporter(payload.path)
        _PAYLOADS[key] = payload
        _preload(payload)
    elif not os.path.exists(payload.path):
        # An earlier task removed it (vanilla gives each task its own copy).
        _write_payload(router, key, bytes(filecache.get_service(router).get_bounded(key, PAYLOAD_TIMEOUT, given_up=_ending)))
    return payload


def _preload(payload):
    """Import, once each, the module loader and the core ``module_utils``
    that `payload` ships, from `payload`.

    Only imports happen here, never module code: forked tasks start from
    this clean, warm state, and skip importing what their module needs.
    A payload whose sources differ from what is loaded already adds nothing.
    """
    if not all(name in payload.entries for name in PRELOAD):
        return
    if any(_PRELOADED[name] != entry[1] for name, entry in payload.entries.items() if name in _PRELOADED):
        return
    wanted = [name for name in list(PRELOAD) + sorted(payload.entries) if name.startswith(PRELOAD_PREFIX) or name in PRELOAD]
    wanted = [name for name in wanted if name not in sys.modules]
    if not wanted:
        return
    # module_utils.basic imports __main__, which mitogen children lack; a
    # stub keeps mitogen's importer from asking the mux for one.
    sys.modules.setdefault("__main__", types.ModuleType("__main__"))
    finder = PayloadFinder(payload)
    sys.meta_path.insert(0, finder)
    try:
        for name in wanted:
            try:
                importlib.import_module(name)
            except (Exception, SystemExit):
                # The task that needs it will import it (and fail) itself.
                # SystemExit: module_utils.basic refuses a target Python its
                # core dropped (3.8 from 2.20) by exiting at import; that
                # must end the task with that message, not this interpreter.
                logging.getLogger(__name__).debug("preloading %s failed", name, exc_info=True)
    finally:
        sys.meta_path.remove(finder)
    for name in list(sys.modules):
        if name.split(".")[0] in OWNED_PREFIXES and name not in _PRELOADED:
            entry = payload.entries.get(name)
            _PRELOADED[name] = entry[1] if entry else None


def _unload_owned():
    """Drop every payload-owned module (``ansible*``) from sys.modules."""
    for name in list(sys.modules):
        if name.split(".")[0] in OWNED_PREFIXES:
            del sys.modules[name]


def _stale_in(payload):
    """Preloaded modules that `payload` does not ship as is (another source,
    or not at all): the task must not see them. The interpreter's payload
    modules are exactly the preloaded ones."""
    entries = payload.entries
    return [name for name, source in _PRELOADED.items() if name not in entries or source != entries[name][1]]


def _child_main(control_fd, out_fd, err_fd):
    """Body of a forked task process. Never returns.

    Everything up to reading the task is the same for every task, so it
    can happen ahead of time, in a spare child.
    """
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        if control_fd != 3:
            os.dup2(control_fd, 3)
        os.closerange(4, _max_fd())
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, _INHERITED_SIGNALS.get(sig, signal.SIG_DFL))
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh Python
        # Keep the old stdio objects alive: collecting them would close fds
        # 0-2, which now are the task's pipes. The child ends in os._exit.
        retained = (sys.stdin, sys.stdout, sys.stderr)  # noqa: F841
        sys.stdin, sys.stdout, sys.stderr = stdio(io.FileIO(0, "r", closefd=False), io.FileIO(1, "w", closefd=False), io.FileIO(2, "w", closefd=False))
        # Nothing of the parent's plumbing may act in the child: its atexit
        # hooks, mitogen's log forwarding, and mitogen's importer (which would
        # ship missing modules from the controller, unlike vanilla).
        atexit._clear()
        logging.root.handlers = []
        task = _read_task(3)
        if task is None:
            os._exit(0)  # retired unused, or the interpreter ended
        key, spec = task
        payload = _PAYLOADS[key]
        prepare_task(payload, spec)
        code = _run_loader(payload, spec)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            _join_threads()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _read_task(fd):
    """Read the pickled ``(payload key, spec)`` the parent writes to `fd`
    and closes; None if it closed without writing."""
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return pickle.loads(b"".join(chunks)) if chunks else None


def prepare_task(payload, spec):
    """Set this process up as the AnsiballZ wrapper's would be for the task.

    Only the payload serves ``ansible*`` (a preloaded module whose source
    differs is dropped), nothing is fetched from the controller by mitogen's
    importer, and the task's environment, cwd and fd limit apply.
    """
    sys.meta_path[:] = [PayloadFinder(payload)] + [f for f in sys.meta_path if not isinstance(f, mitogen.core.Importer)]
    for name in _stale_in(payload):
        sys.modules.pop(name, None)
    # The wrapper puts its zip first on sys.path; a module may pass it on.
    sys.path[:] = [payload.path] + [p for p in sys.path if p not in ("", ".", payload.path)]
    sys.argv = [payload.path]
    # mitogen installs a warnings filter for its own imports; a fresh
    # Python has none of it.
    warnings.filters[:] = [f for f in warnings.filters if "mitogen" not in str(getattr(f[1], "pattern", f[1]))]
    getattr(warnings, "_filters_mutated", lambda: None)()
    # The wrapper script is __main__ under AnsiballZ; mitogen children have
    # none, and module_utils.basic imports it.
    main = types.ModuleType("__main__")
    main.__file__ = payload.path
    sys.modules["__main__"] = main
    _apply_rlimit_nofile(spec.get("rlimit_nofile"))
    os.environ.update(spec["env"])
    # Without a cwd from the connection, the task runs where the interpreter
    # started (ssh: the login's home, also for become, as sudo keeps it),
    # falling back as the AnsiballZ wrapper does.
    try:
        if spec["cwd"]:
            os.chdir(spec["cwd"])
        os.getcwd()
    except OSError:
        try:
            os.chdir(os.path.expanduser("~"))
        except OSError:
            os.chdir("/")
    # As a shell would set it for a module started the vanilla way.
    os.environ["PWD"] = os.getcwd()


def stdio(stdin, stdout, stderr):
    """Text streams over binary ones, encoded as this Python's own stdio
    (which follow the locale: e.g. ``surrogateescape`` under C.UTF-8)."""
    def text(raw, like, errors=None, **kwargs):
        encoding = getattr(like, "encoding", None) or "utf-8"
        return io.TextIOWrapper(raw, encoding=encoding, errors=errors or getattr(like, "errors", None) or "strict", **kwargs)
    return (
        text(stdin, sys.__stdin__),
        text(stdout, sys.__stdout__),
        text(stderr, sys.__stderr__, errors="backslashreplace", line_buffering=True),
    )


def _join_threads():
    """Wait for the module's non-daemon threads, as Python does at exit."""
    import threading
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        try:
            shutdown()
        except Exception:
            pass


def _apply_rlimit_nofile(wanted):
    """Raise or lower the soft fd limit as the AnsiballZ wrapper does."""
    if not wanted:
        return
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, wanted)
    if wanted != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except ValueError:
            pass


def _run_loader(payload, spec):
    """Run the module as the AnsiballZ wrapper's ``invoke_module`` does."""
    from ansible.module_utils._internal._ansiballz import _loader
    _loader.run_module(
        json_params=spec["params"],
        profile=spec["profile"],
        module_fqn=spec["module_fqn"],
        modlib_path=payload.path,
        extensions=spec["extensions"],
    )
    return 0


def _exit_code(exc):
    """Map SystemExit's argument to an exit status, as the interpreter does."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    try:
        sys.stderr.write("%s\n" % (exc.code,))
    except Exception:
        pass
    return 1


def _max_fd():
    try:
        return min(os.sysconf("SC_OPEN_MAX"), 65536)
    except (ValueError, OSError):
        return 4096


def _collect(pid, out_fd, err_fd):
    """Read both pipes until the child is gone and its output drained."""
    chunks = {out_fd: [], err_fd: []}
    open_fds = [out_fd, err_fd]
    status = None
    deadline = None
    while open_fds:
        timeout = 0.5 if deadline is None else max(0.0, deadline - time.time())
        try:
            readable, _, _ = select.select(open_fds, [], [], timeout)
        except (OSError, select.error) as exc:
            if exc.args[0] == errno.EINTR:
                continue
            raise
        for fd in readable:
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                open_fds.remove(fd)
        if status is None:
            waited, st = os.waitpid(pid, os.WNOHANG)
            if waited:
                status = st
                deadline = time.time() + OUTPUT_GRACE
        elif time.time() >= deadline:
            break
    for fd in (out_fd, err_fd):
        os.close(fd)
    if status is None:
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return _killed(status, b"".join(chunks[out_fd]), b"".join(chunks[err_fd]))
    return os.WEXITSTATUS(status), b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


def _killed(status, out, err):
    """What vanilla's ``/bin/sh -c '<python> ...'`` reports for a module
    killed by a signal: status 128+N, and the signal's name on stderr."""
    sig = os.WTERMSIG(status)
    if sig not in (signal.SIGINT, signal.SIGPIPE):
        name = signal.strsignal(sig) if hasattr(signal, "strsignal") else None
        if name:
            err += ("%s%s\n" % (name, " (core dumped)" if os.WCOREDUMP(status) else "")).encode()
    return 128 + sig, out, err


def run_payload(payload, spec, job_id=None):
    """Run the module described by `spec` in a forked child; return
    ``(rc, out, err)``."""
    with _STATE_LOCK:
        child = _take_spare(payload.key) or _Child.fork()
    _RUNNING[child.pid] = job_id
    try:
        child.start(payload.key, spec)
        return _collect(child.pid, child.out, child.err)
    finally:
        _RUNNING.pop(child.pid, None)


class _Child(object):
    """A forked task process, waiting for its task on a control pipe.

    Forking the interpreter and setting the child up (new session, stdio,
    signals, closing inherited fds) costs a few milliseconds a task. After a
    forked task the interpreter forks the next child while it is idle (the
    *spare*), so the next task starts at once. A spare only runs payloads
    its parent had when it was forked; a task with another payload retires
    it and forks anew.
    """

    __slots__ = ("pid", "control", "out", "err", "payload_keys")

    def __init__(self, pid, control, out, err):
        self.pid = pid
        self.control = control
        self.out = out
        self.err = err
        self.payload_keys = frozenset(_PAYLOADS)

    @classmethod
    def fork(cls):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        # The child's garbage collector must not walk (and so copy on write)
        # every object it inherited: freeze them for the fork only.
        gc.freeze()
        try:
            pid = os.fork()
        except BaseException:
            gc.unfreeze()
            for fd in (out_r, out_w, err_r, err_w, ctl_r, ctl_w):
                os.close(fd)
            raise
        if pid == 0:
            _child_main(ctl_r, out_w, err_w)
        gc.unfreeze()
        for fd in (out_w, err_w, ctl_r):
            os.close(fd)
        return cls(pid, ctl_w, out_r, err_r)

    def start(self, key, spec):
        """Hand the child its task. If it died meanwhile, collecting it
        reports how."""
        data = memoryview(pickle.dumps((key, spec), pickle.HIGHEST_PROTOCOL))
        try:
            while data:
                data = data[os.write(self.control, data):]
        except OSError as exc:
            logging.getLogger(__name__).debug("task process %d did not take its task: %s", self.pid, exc)
        finally:
            os.close(self.control)

    def retire(self):
        """End an unused child: it has run nothing, so killing it is safe."""
        for fd in (self.control, self.out, self.err):
            os.close(fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def _take_spare(key):
    """The spare child, if it can run payload `key` and is still there."""
    global _SPARE
    child, _SPARE = _SPARE, None
    if child is None:
        return None
    if key in child.payload_keys and os.waitpid(child.pid, os.WNOHANG)[0] == 0:
        return child
    child.retire()
    return None


def _fork_spare():
    """Fork the next task's child now, while the interpreter is idle."""
    global _SPARE
    with _STATE_LOCK:
        if _SPARE is not None:
            return
        try:
            _SPARE = _Child.fork()
        except OSError as exc:
            logging.getLogger(__name__).debug("could not fork a spare task process: %s", exc)


def _ending():
    """Whether this interpreter has begun to shut down."""
    return bool(_ENDING)


def _kill_running():
    """Hang up on running modules when the connection goes away.

    Vanilla ssh gets the same from sshd: a SIGHUP to the session. Modules
    and commands that ignore it are killed, so nothing outlives the run.
    """
    _ENDING.append(True)
    _hang_up(list(_RUNNING) + list(commands.RUNNING))


def _hang_up(pids):
    """SIGHUP the process groups of `pids`, then SIGKILL those still there
    after a second."""
    for sig in (signal.SIGHUP, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except OSError:
                pass
        deadline = time.time() + 1.0
        while any(pid in _RUNNING or pid in commands.RUNNING for pid in pids) and time.time() < deadline:
            time.sleep(0.05)


class TaskControl(mitogen.service.Service):
    """Cancels a module run when the worker gives up on it (the task's
    ``timeout:``, Ctrl-C). A service runs on a pool thread, so it is heard
    while the main thread waits for the module."""

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.no_reply()
    @mitogen.service.arg_spec({"job_id": str})
    def cancel(self, job_id):
        pids = [pid for pid, job in list(_RUNNING.items()) if job == job_id]
        if pids:
            logging.getLogger(__name__).debug("job %s cancelled: hanging up on %s", job_id, pids)
            _hang_up(pids)
        elif job_id in _INLINE_JOB:
            # An inline module cannot be stopped safely in the middle: end
            # this interpreter with the processes the module started; the
            # next task starts a new interpreter.
            logging.getLogger(__name__).warning("job %s cancelled while running inline: exiting", job_id)
            # No import here: an inline run has mitogen's importer unhooked.
            asyncjobs = sys.modules.get("ansible_svc.target.asyncjobs")
            spare = asyncjobs.fork_server_pid() if asyncjobs is not None else None
            for pid in _descendants(os.getpid(), spare=spare):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os._exit(1)


def _descendants(root, spare=None):
    """Pids of the processes below `root` (Linux /proc), except the subtree
    of `spare` (the async fork server: its jobs must live on)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as fp:
                ppid = int(fp.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid == spare:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@mitogen.core.takes_router
def run_module(job_id, mux_id, payload_key, spec, router=None):
    """Run one module job inline, on the main thread (forked ones run on
    pool threads: ``runner.TaskRunner.module``)."""
    set_up(router)
    return run_job(router, job_id, mux_id, payload_key, spec)


def run_job(router, job_id, mux_id, payload_key, spec):
    """Run one module job and push its result to the mux's JobResultService.

    Returns a small acknowledgement; the result itself travels through the
    service so that it reaches whoever listens for the job.
    """
    from ansible_svc import names
    forked = False
    try:
        payload = get_payload(router, payload_key)
        if spec.get("isolation") == "inline":
            from ansible_svc.target import inline
            with _STATE_LOCK:
                _INLINE_JOB[:] = [job_id]
                try:
                    rc, out, err = inline.run_inline(payload, spec)
                finally:
                    del _INLINE_JOB[:]
        else:
            rc, out, err = run_payload(payload, spec, job_id)
            forked = True
        result = {"rc": rc, "stdout": mitogen.core.Blob(out), "stderr": mitogen.core.Blob(err)}
    except mitogen.core.TimeoutError:
        result = {"error": "module payload %s did not arrive from the controller within %ss" % (payload_key, PAYLOAD_TIMEOUT)}
    accepted = _push(mitogen.core.Context(router, mux_id), names.JOBS, job_id, result)
    if forked and not _ENDING:
        _fork_spare()
    return {"pushed": accepted}


def _push(mux, service, job_id, result):
    """Push a job's result; whether the mux accepted it. Gives up when the
    interpreter starts shutting down (its broker no longer carries the
    answer, and its shutdown waits for this thread) or after PUSH_TIMEOUT."""
    recv = call_service_async(mux, service, "push", job_id=job_id, result=result)
    deadline = time.time() + PUSH_TIMEOUT
    while not _ENDING and time.time() < deadline:
        try:
            return bool(recv.get(timeout=0.2).unpickle())
        except mitogen.core.TimeoutError:
            continue
        except mitogen.core.Error as exc:
            logging.getLogger(__name__).debug("job %s: push failed: %s", job_id, exc)
            return False
    return False
