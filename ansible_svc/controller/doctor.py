"""The ``ansible_svc.accel.doctor`` action: how each host is reached.

Runs in Ansible worker processes. Global state: none.

Per host it answers: whether ansible-svc serves the host and why (or why
not), the chain of logins that reaches it, the interpreter a task runs in
and its Python version, the round trip of a call to it, and what the run's
mux holds (cached interpreters, module files, jobs). Served hosts are asked
through their session (one call for the interpreter's facts, then a few
no-op calls timed) and the mux's DoctorService; other hosts with a POSIX
shell through plain shell commands, as vanilla runs them.

The functions above :class:`ActionModule` are pure (dicts in, strings out)
so that the wording is unit-tested without a target. Nothing shown comes
from a password: chains are built from addresses, accounts and method names
only, and the mux's report holds no secret either.
"""

from __future__ import annotations

import shlex
import statistics
import time

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_svc.controller import mux_client, spec as specs, strategy as svc_strategy

#: Default number of timed no-op calls: enough for a stable median, few
#: enough that a slow link (bastions, 100 ms each) answers within a second.
DEFAULT_ROUND_TRIPS = 5

#: Upper bound on ``round_trips``: the doctor must stay a quick look.
MAX_ROUND_TRIPS = 100

ARGUMENT_SPEC = {
    "round_trips": {"type": "int", "default": DEFAULT_ROUND_TRIPS},
}

#: The ``svc_*`` strategy to suggest for a stock one.
SVC_STRATEGIES = {"linear": "svc_linear", "free": "svc_free", "host_pinned": "svc_host_pinned"}

#: Shell families whose commands the not-served probe can run.
POSIX_SHELLS = ("sh", "csh", "fish")

#: Prints the interpreter's path and version; run by the not-served probe
#: (no module, no file: one shell command).
PYTHON_PROBE = "import sys; print(sys.executable); print('%d.%d.%d' % tuple(sys.version_info[:3]))"


# -- pure: what to say ---------------------------------------------------------


def short(name: str | None) -> str:
    """A plugin's name without its collection (``ansible.builtin.ssh`` -> ``ssh``)."""
    return (name or "").rsplit(".", 1)[-1]


def verdict(*, ours: bool, switched_off: bool, disabled: bool, plugin: str, requested: str, strategy: str,
            strategy_mux: bool, vanilla_plugin: str = "") -> tuple[bool, str, str]:
    """``(served, mode, reason)`` of a host.

    `ours`: the connection is one of our plugins; `switched_off`: it hands
    everything to Ansible's own (ANSIBLE_SVC_DISABLE); `plugin`: the plugin
    loaded; `requested`: the connection the host asked for; `strategy`: the
    play's strategy; `strategy_mux`: a ``svc_*`` strategy started the mux.
    Mode is ``strategy``, ``connection`` (served), ``off`` or ``vanilla``.
    """
    plugin_name, requested_name, strategy_name = short(plugin), short(requested), short(strategy)
    if ours and not switched_off:
        if strategy_mux and requested_name != plugin_name and not strategy_name.startswith("svc_"):
            # The loader keeps its redirects for the rest of the run.
            return True, "strategy", "connection %s is served by %s: the svc_* strategy of an earlier play set " \
                "this run up (this play's strategy is %s)" % (requested, plugin_name, strategy)
        if strategy_mux and requested_name != plugin_name:
            return True, "strategy", "strategy %s serves connection %s with %s" % (strategy, requested, plugin_name)
        if strategy_mux:
            return True, "strategy", "connection %s, under strategy %s" % (plugin_name, strategy)
        return True, "connection", "connection %s is set for this host (connection mode, strategy %s)" % (
            plugin_name, strategy)
    if ours:
        return False, "off", "ANSIBLE_SVC_DISABLE is set: %s hands every operation to %s" % (
            plugin_name, vanilla_plugin or "Ansible's own plugin")
    if disabled:
        also = " and strategy %s runs as Ansible's own" % strategy if strategy_name.startswith("svc_") else ""
        return False, "off", "ANSIBLE_SVC_DISABLE is set: connection %s runs vanilla%s" % (requested, also)
    ours_for_it = svc_strategy.REDIRECTS.get(requested) or svc_strategy.REDIRECTS.get(requested_name)
    if ours_for_it and not strategy_name.startswith("svc_"):
        return False, "vanilla", "connection %s under strategy %s, which is Ansible's own: use strategy %s, or " \
            "ansible_connection %s for this host" % (requested, strategy, SVC_STRATEGIES.get(strategy_name, "svc_linear"),
                                                     ours_for_it)
    if ours_for_it:
        return False, "vanilla", "connection %s was loaded as Ansible's %s, not redirected by strategy %s" % (
            requested, plugin, strategy)
    return False, "vanilla", "connection %s is not one ansible-svc serves (it serves ssh, local, podman, docker " \
        "and chroot): it runs vanilla" % (plugin_name or requested)


def _where(host, port) -> str:
    where = str(host) if host else "?"
    if port and ":" in where:
        where = "[%s]" % where  # IPv6
    return "%s:%s" % (where, port) if port else where


def chain(spec: dict, local_user: str | None = None) -> list:
    """The logins that reach a host, first first: bastions, the host (or
    container, chroot, the controller), then become. `spec` is a connection
    spec (``ansible_svc.controller.spec``) or an entry of the mux's report;
    only addresses, accounts and method names are read."""
    transport = spec.get("transport")
    hops = ["ssh %s" % _login(hop.get("user"), hop.get("host"), hop.get("port")) for hop in spec.get("via") or ()]
    if transport == "local":
        user = local_user or spec.get("user")
        hops.append("local (the controller)%s" % (" as %s" % user if user else ""))
    elif transport == "chroot":
        hops.append("chroot %s" % spec.get("host"))
    elif transport in ("podman", "docker"):
        user = spec.get("user")
        hops.append("%s container %s%s" % (transport, spec.get("host"), " as %s" % user if user else ""))
    else:
        hops.append("%s %s" % (transport, _login(spec.get("user"), spec.get("host"), spec.get("port"))))
    become = spec.get("become")
    if become:
        hops.append("%s as %s" % (short(become.get("method")) or "become", become.get("user") or "root"))
    return hops


def _login(user, host, port) -> str:
    return "%s%s" % ("%s@" % user if user else "", _where(host, port))


def addresses(spec: dict) -> list:
    """``[transport, host, port]`` of the host and of its bastions: the
    mux lists the cached interpreters that log in there."""
    found = [[spec.get("transport"), spec.get("host"), spec.get("port")]]
    found.extend(["ssh", hop.get("host"), hop.get("port")] for hop in spec.get("via") or ())
    return found


def median_ms(seconds: list) -> float | None:
    """The median of round trips given in seconds, in milliseconds."""
    if not seconds:
        return None
    return round(statistics.median(seconds) * 1000.0, 2)


def size_text(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1024.0
    return ""  # pragma: no cover


def _plural(count: int, word: str) -> str:
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def interpreter_line(entry: dict) -> str:
    """One cached interpreter of the mux's report."""
    asked = [a for a in entry.get("requested") or () if a and a != entry.get("started_as")]
    return "%s: %s (Python %s), pid %s, started as %s%s, %d in use" % (
        " -> ".join(chain(entry)), entry.get("python"), entry.get("version"), entry.get("pid"),
        entry.get("started_as"), ", also asked as %s" % ", ".join(asked) if asked else "", entry.get("refs") or 0)


def mux_lines(mux: dict) -> list:
    """What the doctor shows of the mux's report."""
    interpreters, files, jobs = mux.get("interpreters") or {}, mux.get("files") or {}, mux.get("jobs") or {}
    listed = interpreters.get("listed") or []
    lines = ["  mux:         pid %s, %s cached, %d for this host and its bastions%s" % (
        mux.get("pid"), _plural(interpreters.get("count", 0), "interpreter"), len(listed), ":" if listed else "")]
    lines.extend("    " + interpreter_line(entry) for entry in listed)
    lines.append("  mux files:   %s cached (%s), %s open" % (
        _plural(files.get("cached", 0), "module file"), size_text(files.get("cached_bytes", 0)),
        _plural(files.get("grants", 0), "file grant")))
    lines.append("  mux jobs:    %d running, %s held, %d parked, %d refused" % (
        jobs.get("running", 0), _plural(jobs.get("held", 0), "result"), jobs.get("parked", 0), jobs.get("refused", 0)))
    return lines


def format_lines(host: str, report: dict) -> list:
    """The doctor's ``msg``: one line per fact, readable in any callback's
    output."""
    served = report.get("served")
    lines = ["%s: %s" % (host, "served by ansible-svc" if served else "not served by ansible-svc (runs vanilla)"),
             "  why:         %s" % report.get("reason")]
    if report.get("chain"):
        lines.append("  chain:       %s" % " -> ".join(report["chain"]))
    python = report.get("python")
    if python:
        details = ["Python %s" % python.get("version")]
        if python.get("implementation"):
            details[0] += " (%s)" % python["implementation"]
        if python.get("pid") is not None:
            details.append("pid %s" % python["pid"])
        if python.get("uid") is not None:
            details.append("uid %s" % python["uid"])
        lines.append("  interpreter: %s, %s" % (python.get("executable"), ", ".join(details)))
    elif report.get("python_error"):
        lines.append("  interpreter: unknown (%s)" % report["python_error"])
    if report.get("round_trip_ms") is not None:
        lines.append("  round trip:  %s ms (median of %s)" % (report["round_trip_ms"], report.get("round_trip_of")))
    if report.get("mux"):
        lines.extend(mux_lines(report["mux"]))
    if report.get("error"):
        # ssh's own words may span lines: one list item each, aligned.
        first, *rest = str(report["error"]).strip().splitlines() or [""]
        lines.append("  error:       %s" % first)
        lines.extend("               %s" % line for line in rest)
    return lines


# -- the action ----------------------------------------------------------------


def _strategy_of(task) -> str:
    from ansible import constants as C

    try:
        name = task.get_play().strategy
    except Exception:  # an implicit task without a play
        name = None
    return specs.plain(name) if isinstance(name, str) and name else C.DEFAULT_STRATEGY


def _python_wanted(spec: dict, task_vars: dict) -> str | None:
    """The interpreter modules would run in: the one set for the host, else
    the one discovery found, else None (whatever the host has)."""
    if spec.get("default_python"):
        return spec["default_python"]
    facts = task_vars.get("ansible_facts") or {}
    found = facts.get("discovered_interpreter_python") or task_vars.get("discovered_interpreter_python")
    return specs.plain(found) if isinstance(found, str) and found else None


class ActionModule(ActionBase):
    """``ansible_svc.accel.doctor``: see ``plugins/modules/doctor.py``."""

    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        from ansible_svc.controller.plugin_connection import SvcConnectionBase

        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        calls = args["round_trips"]
        if not 1 <= calls <= MAX_ROUND_TRIPS:
            raise AnsibleError("round_trips must be between 1 and %d, not %s" % (MAX_ROUND_TRIPS, calls))
        connection = self._connection
        ours = isinstance(connection, SvcConnectionBase)
        # The plugin's name as Ansible resolved it (ansible.builtin.ssh,
        # ansible_svc.accel.svc_ssh, svc_ssh from a plugin path).
        plugin = specs.plain(getattr(connection, "ansible_name", None) or getattr(connection, "_load_name", "")) or ""
        requested = specs.plain(self._play_context.connection) or ""
        strategy = _strategy_of(self._task)
        served, mode, reason = verdict(
            ours=ours, switched_off=ours and connection.switched_off, disabled=svc_strategy.disabled(),
            plugin=plugin, requested=requested,
            strategy=strategy, strategy_mux=mux_client.socket_path() is not None,
            vanilla_plugin=getattr(connection, "vanilla_plugin", ""))
        report = {"served": served, "mode": mode, "reason": reason, "strategy": strategy,
                  "connection": {"requested": requested, "plugin": plugin}}
        if served:
            report.update(self._served(connection, task_vars, calls))
        else:
            report.update(self._vanilla(connection, task_vars, calls))
        report["msg"] = format_lines(specs.plain(task_vars.get("inventory_hostname") or self._play_context.remote_addr
                                                 or ""), report)
        if report.get("error"):
            report["failed"] = True
        result.update(report)
        result["changed"] = False
        return result

    def _served(self, connection, task_vars, calls) -> dict:
        spec = connection.doctor_spec()
        report = {"chain": chain(spec, connection.default_user)}
        try:
            probe = connection.doctor_probe(_python_wanted(spec, task_vars), calls)
            report["mux"] = connection.mux_report(addresses(spec))
        except AnsibleError as exc:
            # Still a report: how the host was to be reached, and what failed.
            report["error"] = str(exc)
            return report
        about = probe["about"]
        report.update({
            "python": {"executable": about["python"], "version": about["version"],
                       "implementation": about.get("implementation"), "pid": about["pid"], "uid": about["uid"]},
            "round_trip_ms": median_ms(probe["round_trips"]),
            "round_trip_of": "%d no-op calls to the interpreter" % len(probe["round_trips"]),
        })
        return report

    def _vanilla(self, connection, task_vars, calls) -> dict:
        """What can be seen without ansible-svc: the chain from the play
        context, and, on a POSIX shell, the interpreter and the round trip
        of a shell command, run as vanilla runs them."""
        context = self._play_context
        transport = short(specs.plain(getattr(connection, "transport", None)) or context.connection) or "?"
        spec = {"transport": transport, "host": specs.plain(context.remote_addr),
                "port": specs.plain(context.port), "user": specs.plain(context.remote_user)}
        become = connection.become
        if become is not None:
            try:
                user = become.get_option("become_user")
            except (KeyError, AnsibleError):
                user = None
            spec["become"] = {"method": specs.plain(become.name), "user": specs.plain(user)}
        report = {"chain": chain(spec, specs.plain(connection.default_user) if transport == "local" else None)}
        if getattr(connection._shell, "SHELL_FAMILY", None) not in POSIX_SHELLS:
            report["python_error"] = "not probed: the host's shell is not a POSIX shell"
            return report
        interpreter = task_vars.get("ansible_python_interpreter")
        interpreter = specs.python_for(self._templar.template(interpreter)) if isinstance(interpreter, str) else None
        interpreter = interpreter or _python_wanted({}, task_vars) or "python3"
        try:
            out = self._low_level_execute_command("%s -c %s" % (interpreter, shlex.quote(PYTHON_PROBE)), sudoable=True)
            words = (out.get("stdout") or "").split()
            if out.get("rc") == 0 and len(words) >= 2:
                report["python"] = {"executable": words[-2], "version": words[-1]}
            else:
                report["python_error"] = "%s did not run: %s" % (interpreter, (out.get("stderr") or "").strip()[:200])
            times = []
            for _call in range(calls):
                start = time.perf_counter()
                self._low_level_execute_command("true", sudoable=True)
                times.append(time.perf_counter() - start)
        except AnsibleError as exc:
            # As on a served host: the chain and what failed, not only UNREACHABLE.
            report["error"] = str(exc)
            return report
        report["round_trip_ms"] = median_ms(times)
        report["round_trip_of"] = "%d shell commands 'true', run as vanilla runs commands" % calls
        return report
