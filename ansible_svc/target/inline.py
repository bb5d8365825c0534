"""Run a module inside the target interpreter itself (``svc_task_isolation:
inline``).

Runs in target interpreters, on the main thread. Global state: none kept;
the process-wide state a module is known to touch is saved before and put
back after each run.

This trades isolation for the cost of a fork. Restored after every task:
stdio (file descriptors 0-2 point at the task's output meanwhile), cwd,
``os.environ``, umask, ``sys.argv``, ``sys.path``, ``sys.meta_path``,
``__main__``, warnings filters, the soft fd limit, and
the set of ``ansible*`` modules (those the task imported are dropped, the
preloaded ones put back). Not restored: changes a module makes *inside*
modules it shares with the interpreter (the preloaded ``module_utils``, the
standard library, mitogen), threads it leaves running,
signal handlers it installs, atexit handlers (never run), file descriptors it
leaks. A module that crashes or calls ``os._exit`` ends the interpreter; the
next task starts a new one.
"""

# !mitogen: minify_safe

import os
import sys
import tempfile
import traceback
import warnings

from ansible_svc.target import payloads, wrapper


class _Saved(object):
    """The process state a run may change, as it was before."""

    def __init__(self):
        self.stdio = (sys.stdin, sys.stdout, sys.stderr)
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.argv = list(sys.argv)
        self.path = list(sys.path)
        self.meta_path = list(sys.meta_path)
        self.main = sys.modules.get("__main__")
        self.warning_filters = list(warnings.filters)
        self.owned = {name: module for name, module in sys.modules.items() if name.split(".")[0] in payloads.OWNED_PREFIXES}
        self.rlimit = _get_rlimit()

    def restore(self):
        sys.stdin, sys.stdout, sys.stderr = self.stdio
        try:
            os.chdir(self.cwd)
        except OSError:
            os.chdir("/")
        if os.environ != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        os.umask(self.umask)
        sys.argv[:] = self.argv
        sys.path[:] = self.path
        sys.meta_path[:] = self.meta_path
        if self.main is not None:
            sys.modules["__main__"] = self.main
        warnings.filters[:] = self.warning_filters
        getattr(warnings, "_filters_mutated", lambda: None)()
        payloads.unload_owned()
        sys.modules.update(self.owned)
        _set_rlimit(self.rlimit)


def _get_rlimit():
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _set_rlimit(limits):
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    except (ValueError, OSError):
        pass


class _StdioFds(object):
    """Points fds 0-2 at /dev/null and two temporary files for the run, so
    that processes the module starts (``respawn_module``, subprocesses that
    inherit stdout) write into the task's output, as in a module process."""

    def __enter__(self):
        self.saved = [os.dup(fd) for fd in (0, 1, 2)]
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        devnull = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((0, devnull), (1, self.out.fileno()), (2, self.err.fileno())):
            os.dup2(target, fd)
        os.close(devnull)
        return self

    def __exit__(self, *exc_info):
        for fd, saved in zip((0, 1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)

    def read(self):
        data = []
        for fp in (self.out, self.err):
            fp.seek(0)
            data.append(fp.read())
            fp.close()
        return data


def run_inline(store, payload, spec):
    """Run the module described by `spec` here; return (rc, out, err)."""
    saved = _Saved()
    fds = _StdioFds()
    try:
        with fds:
            sys.stdin, sys.stdout, sys.stderr = wrapper.fd_stdio()
            wrapper.prepare_task(store, payload, spec)
            try:
                rc = wrapper.run_module(payload, spec)
            except BaseException:
                traceback.print_exc()
                rc = 1
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        saved.restore()
    out, err = fds.read()
    return rc, out, err
