"""Set a process up for one module run as the AnsiballZ wrapper would, and
run the module.

Runs in target interpreters: in a task process forked for the run
(``taskproc``) or, for ``svc_task_isolation: inline``, in the interpreter
itself (``inline``). Global state: none; it changes the calling process's.
"""

# !mitogen: minify_safe

import io
import os
import sys
import types
import warnings

import mitogen.core

from ansible_svc.target.payloads import PayloadFinder


def prepare_task(store, payload, spec):
    """Set this process up as the AnsiballZ wrapper's would be for the task.

    Only the payload serves ``ansible*`` (a preloaded module whose source
    differs is dropped), nothing is fetched from the controller by mitogen's
    importer, and the task's environment, cwd and fd limit apply.
    """
    sys.meta_path[:] = [PayloadFinder(payload)] + [f for f in sys.meta_path if not isinstance(f, mitogen.core.Importer)]
    for name in store.stale_in(payload):
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


def fd_stdio():
    """:func:`stdio` over file descriptors 0-2, which stay open."""
    return stdio(io.FileIO(0, "r", closefd=False), io.FileIO(1, "w", closefd=False), io.FileIO(2, "w", closefd=False))


def run_module(payload, spec):
    """Run the module as the wrapper's ``invoke_module`` does; its exit
    status, as the interpreter would give it."""
    try:
        from ansible.module_utils._internal._ansiballz import _loader
        _loader.run_module(
            json_params=spec["params"],
            profile=spec["profile"],
            module_fqn=spec["module_fqn"],
            modlib_path=payload.path,
            extensions=spec["extensions"],
        )
    except SystemExit as exc:
        return exit_code(exc)
    return 0


def exit_code(exc):
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
