"""Interpreters inside containers and chroots, started from the mux.

Runs in the mux. Global state: none.

A container's interpreter is started the way its vanilla connection plugin
runs each command: ``podman exec``, ``docker exec`` or ``chroot``, with the
same executable, extra arguments, user, environment and working directory,
once per run instead of once per command. mitogen's bootstrap then talks to
it over the exec's stdin and stdout.
"""

from __future__ import annotations

import shlex

import mitogen.parent

from ansible_svc import rpc

#: Transports served here.
KINDS = ("podman", "docker", "chroot")


def exec_argv(spec: dict) -> list:
    """The command line that runs a program inside `spec`'s container, as
    its vanilla plugin builds it for each command (the program follows)."""
    kind = spec["transport"]
    if kind == "chroot":
        return [spec.get("exe") or "chroot", spec["host"]]
    argv = [spec.get("exe") or kind] + list(spec.get("exec_args") or ()) + ["exec", "--interactive"]
    if spec.get("user"):
        argv += ["--user", spec["user"]]
    for key, value in sorted((spec.get("env") or {}).items()):
        argv += ["--env", "%s=%s" % (key, value)]
    if spec.get("workdir"):
        argv += ["--workdir", spec["workdir"]]
    if spec.get("privileged"):
        argv += ["--privileged"]
    return argv + ["--", spec["host"]]


class Options(mitogen.parent.Options):
    def __init__(self, exec_argv, **kwargs):
        super(Options, self).__init__(**kwargs)
        self.exec_argv = list(exec_argv)


class ExecConnection(mitogen.parent.Connection):
    """A Python started inside a container by an exec command line."""

    options_class = Options
    child_is_immediate_subprocess = False
    # The exec tool's own errors ("no such container") come on stderr; merged,
    # mitogen reports them when the bootstrap fails.
    create_child_args = {"merge_stdio": True}

    def _get_name(self):
        return u"%s.%s" % (self.options.exec_argv[0].rsplit("/", 1)[-1], self.options.exec_argv[-1])

    def get_boot_command(self):
        return self.options.exec_argv + super(ExecConnection, self).get_boot_command()


def connect(router, spec: dict, python: str, timeout: float):
    """Start `python` inside `spec`'s container; its context."""
    return rpc.connect_with(router, ExecConnection, exec_argv=exec_argv(spec), python_path=shlex.split(python),
                            connect_timeout=timeout, remote_name="ansible-svc")
