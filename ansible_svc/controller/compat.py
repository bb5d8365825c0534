"""Every contact with ansible-core internals, one named adapter per core.

Runs in the ``ansible-playbook`` controller process and in Ansible worker
processes. Global state: the adapter of the running core and the verdicts of
the contract checks, both computed once per process (the controller computes
them before workers fork, so workers inherit them), and the set of warnings
already shown.

ansible-svc hooks into a few places that ansible-core does not offer as an
API. Each changes between core releases, so each lives here, behind an
adapter method, with a contract check:

1. the async poll hook: ``TaskExecutor._poll_async_result``'s parameters and
   result type (a dict up to 2.20, a ``UnifiedTaskResult`` called as
   ``utr=`` from 2.21);
2. result parsing: ``ActionBase._parse_returned_data`` plus the removal of
   internal keys (``ansible.vars.clean.remove_internal_keys`` up to 2.20,
   ``UnifiedTaskResult.remove_internal_keys`` from 2.21);
3. the AnsiballZ wrapper layout: the keyword arguments of ``_ansiballz_main``
   and of the module loader's ``run_module``;
4. the async_wrapper command line: ``<jid> <limit> <module> <args|_>
   [-preserve_tmp]`` up to 2.20, ``<jid> <limit> <true|false> <module>
   <command...>`` from 2.21;
5. the shell housekeeping commands (temp dirs, chmod, rm) that the target
   does without a shell: ``... && sleep 0`` up to 2.20, no suffix from 2.21
   (the target recognises both; tests/unit/test_compat_contract.py builds the
   commands with the installed core and checks the target recognises them);
6. the private attributes we read (``TaskExecutor._connection`` and friends,
   ``Templar._from_template_engine``);
7. the workers' result queue (``FinalQueue.put``), which
   :func:`guard_result_queue` makes safe against the workers' own signal
   handler;
8. a become plugin's random id (``BecomeBase._id``), which its
   ``build_become_command`` puts in the success marker and the prompt;
9. key data (``private_key``): the ssh plugin's own
   ``_populate_agent`` puts the key into the run's ssh-agent;
10. su's localized password prompts (``prompt_l10n``, else the plugin's
   ``SU_PROMPT_LOCALIZATIONS``), matched as its ``check_password_prompt`` does.

How it works:

1. :func:`adapter` picks the adapter of the running core's ``major.minor``;
   a newer core gets the newest adapter and one warning per run
   (:func:`check_version`), an older one is refused.
2. Before using a hook, the caller asks :func:`contract_ok` (``"poll"``,
   ``"results"``, ``"ansiballz"``, ``"async_wrapper"``). Each check compares the
   adapter's expectations with the installed core (signatures, source of the
   async_wrapper module). A failed check warns once and the feature steps
   aside to vanilla behaviour; it never fails a task.

When support for a core is dropped, delete its adapter class; the checks and
their tests stay.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import os
import posixpath
import re
import signal
import typing as t

from ansible.utils.display import Display

display = Display()

#: Oldest core we support: older ones lack the AnsiballZ layout we split.
OLDEST = (2, 19)
#: Newest core the test matrix runs on; newer ones get a warning.
NEWEST_TESTED = (2, 21)

_WARNED: set = set()


def core_version() -> str:
    """The running ansible-core's version string (a function, so tests can fake it)."""
    from ansible.release import __version__

    return __version__


def series(version: str) -> tuple[int, int]:
    """``(2, 21)`` from ``"2.21.5"`` (also ``"2.22.0.dev0"``, ``"2.21.0rc1"``)."""
    match = re.match(r"^(\d+)\.(\d+)", version)
    if not match:
        raise ValueError("not an ansible-core version: %r" % version)
    return int(match.group(1)), int(match.group(2))


def warn_once(key: str, msg: str) -> None:
    """One warning per process (per run, when called before workers fork)."""
    if key not in _WARNED:
        _WARNED.add(key)
        display.warning(msg)


# -- the adapters --------------------------------------------------------------


class Core219:
    """ansible-core 2.19: the first core with the AnsiballZ layout we split."""

    series = (2, 19)

    #: ``TaskExecutor._poll_async_result``'s parameters, and which one is the
    #: task result.
    poll_parameters = ("self", "result", "templar", "task_vars")
    poll_result_parameter = "result"

    #: ``ActionBase._parse_returned_data``'s parameters.
    parse_parameters = ("self", "res", "profile")

    #: What the installed async_wrapper module must say about its arguments.
    async_wrapper_usage = "usage: async_wrapper <jid> <time_limit> <modulescript> <argsfile> [-preserve_tmp]"

    #: Appended by ``_low_level_execute_command`` to every command.
    shell_suffix = " && sleep 0"

    #: ``ansible_python_interpreter`` values that ask for discovery
    #: (``module_common._get_shebang``); any other value is a path.
    discovery_values = ("auto", "auto_legacy", "auto_silent", "auto_legacy_silent")

    #: Attributes of a TaskExecutor the poll hook reads.
    executor_attributes = ("_connection", "_task", "_host", "_play_context", "_loader", "_shared_loader_obj")

    # 1. the poll hook

    def poll_job_id(self, result) -> str | None:
        return result.get("ansible_job_id") if isinstance(result, dict) else None

    def poll_answer(self, result: dict):
        """What ``_poll_async_result`` returns, from a result dict."""
        return result

    def poll_gave_up(self, limit) -> str:
        """``_poll_async_result``'s words when a job outlives its limit."""
        return "async task did not complete within the requested time - %ss" % limit

    # 2. result parsing

    def parse_module_output(self, action, data: dict) -> dict:
        """`data` (a module's JSON result) parsed as ``_execute_module`` does
        for the async_status module: deserialized with the ``legacy``
        profile, internal keys removed."""
        from ansible.vars.clean import remove_internal_keys

        parsed = action._parse_returned_data({"rc": 0, "stdout": json.dumps(data), "stderr": ""}, "legacy")
        remove_internal_keys(parsed)
        return parsed

    def populate_agent(self, connection) -> str:
        """Add the key data of `connection` (an ``ansible.builtin.ssh``
        connection with our options) to the run's ssh-agent; return the
        path of its public half."""
        return str(connection._populate_agent())

    def become_id(self, plugin) -> str:
        """The random id of `plugin`'s last ``build_become_command``."""
        return plugin._id

    def localized_prompt(self, plugin) -> str | None:
        """The regular expression `plugin`'s own ``check_password_prompt``
        finds its password prompt with, for plugins that list the prompt in
        every language (``su``: ``prompt_l10n``, else its built-in list);
        None for the others."""
        try:
            prompts = plugin.get_option("prompt_l10n")
        except KeyError:
            return None
        prompts = prompts or getattr(plugin, "SU_PROMPT_LOCALIZATIONS", None)
        if not prompts:
            return None
        return "(?i)(?:%s)\\s*[:\uff1a]" % "|".join(re.escape(str(p)) for p in prompts)

    def results_contract(self) -> str | None:
        try:
            from ansible.vars.clean import remove_internal_keys  # noqa: F401
        except ImportError as exc:
            return str(exc)
        return None

    # 4. the async_wrapper command line

    def async_wrapper_args(self, rest: list) -> dict | None:
        """``<jid> <limit> <module> <argsfile or _> [-preserve_tmp]``."""
        if len(rest) not in (4, 5) or not _is_jid(rest[0]) or not rest[1].isdigit():
            return None
        if len(rest) == 5 and rest[4] != "-preserve_tmp":
            return None
        return {
            "base_jid": rest[0],
            "limit": int(rest[1]),
            "module_path": rest[2],
            "args_path": None if rest[3] == "_" else rest[3],
            "preserve_tmp": len(rest) == 5,
        }


class Core220(Core219):
    """ansible-core 2.20: as 2.19."""

    series = (2, 20)


class Core221(Core219):
    """ansible-core 2.21: ``UnifiedTaskResult``, a new async_wrapper command
    line, no ``sleep 0`` suffix."""

    series = (2, 21)
    poll_parameters = ("self", "utr", "templar", "task_vars")
    poll_result_parameter = "utr"
    async_wrapper_usage = "usage: async_wrapper <jid> <time_limit> <preserve_tmp> <module_path> <invocation_args>"
    shell_suffix = ""
    discovery_values = ("auto", "auto_silent")

    def poll_gave_up(self, limit) -> str:
        # 2.21 tests ``ansible_parsed`` of its fresh failure result, never
        # set, so a job outliving its limit always gets these words.
        return "async task produced unparsable results"

    def poll_job_id(self, result) -> str | None:
        return getattr(result, "async_job_id", None)

    def poll_answer(self, result: dict):
        from ansible._internal._task import UnifiedTaskResult

        with UnifiedTaskResult.create_and_record(result) as utr:
            pass
        return utr

    def parse_module_output(self, action, data: dict) -> dict:
        text = json.dumps(data)
        utr = action._parse_returned_data(
            {"rc": 0, "stdout": text, "stdout_lines": [text], "stderr": "", "stderr_lines": []}, "legacy")
        utr.remove_internal_keys()
        return utr.as_result_dict(for_round_trip=True)

    def results_contract(self) -> str | None:
        try:
            from ansible._internal._task import UnifiedTaskResult
        except ImportError as exc:
            return str(exc)
        for name in ("remove_internal_keys", "as_result_dict", "create_and_record"):
            if not hasattr(UnifiedTaskResult, name):
                return "UnifiedTaskResult has no %s" % name
        if "for_round_trip" not in inspect.signature(UnifiedTaskResult.as_result_dict).parameters:
            return "UnifiedTaskResult.as_result_dict takes no for_round_trip"
        return None

    def async_wrapper_args(self, rest: list) -> dict | None:
        """``<jid> <limit> <true|false> <module> <command running the module...>``.

        The command is the module's interpreter (its shebang) and the module,
        plus the arguments file for modules that read one: exactly what the
        job runs from the module file, so we accept only that shape.
        """
        if len(rest) < 5 or not _is_jid(rest[0]) or not rest[1].isdigit() or rest[2] not in ("true", "false"):
            return None
        module_path, command = rest[3], rest[4:]
        if module_path not in command:
            return None
        after = command[command.index(module_path) + 1:]
        if len(after) > 1:
            return None
        return {
            "base_jid": rest[0],
            "limit": int(rest[1]),
            "module_path": module_path,
            "args_path": after[0] if after else None,
            "preserve_tmp": rest[2] == "true",
            "argv": list(command),
        }


ADAPTERS = {cls.series: cls for cls in (Core219, Core220, Core221)}


def _is_jid(word: str) -> bool:
    return re.match(r"^j\d+$", word) is not None


def adapter_for(version: str) -> Core219:
    """The adapter for core `version`: its own, or the newest for a newer core."""
    wanted = series(version)
    if wanted < OLDEST:
        from ansible.errors import AnsibleError

        raise AnsibleError("ansible-svc needs ansible-core %d.%d or newer; this is ansible-core %s" % (OLDEST + (version,)))
    cls = ADAPTERS.get(wanted) or ADAPTERS[max(ADAPTERS)]
    return cls()


def adapter() -> Core219:
    """The running core's adapter (computed on each call: it is cheap and
    keeps faked versions in tests honest)."""
    return adapter_for(core_version())


def check_version() -> None:
    """Warn once per run when the core is newer than the newest tested one."""
    version = core_version()
    adapter_for(version)  # refuses an older core
    if series(version) > NEWEST_TESTED:
        warn_once(
            "version",
            "ansible-svc: ansible-core %s is newer than the newest core ansible-svc is tested with (%d.%d). "
            "It runs with the %d.%d adapter; any hook whose check against this core fails falls back to "
            "vanilla Ansible for that feature." % ((version,) + NEWEST_TESTED + NEWEST_TESTED),
        )


# -- contract checks -------------------------------------------------------------


def _parameters(func) -> tuple:
    return tuple(inspect.signature(func).parameters)


def _check_poll(core: Core219) -> str | None:
    from ansible.executor.task_executor import TaskExecutor

    original = getattr(TaskExecutor._poll_async_result, "ansible_svc_original", TaskExecutor._poll_async_result)
    found = _parameters(original)
    if found != core.poll_parameters:
        return "TaskExecutor._poll_async_result takes %s, not %s" % (found, core.poll_parameters)
    from ansible.template import Templar

    if not hasattr(Templar, "_from_template_engine"):
        return "Templar has no _from_template_engine"
    return _check_results(core)


def _check_results(core: Core219) -> str | None:
    from ansible.plugins.action import ActionBase

    found = _parameters(ActionBase._parse_returned_data)
    if found != core.parse_parameters:
        return "ActionBase._parse_returned_data takes %s, not %s" % (found, core.parse_parameters)
    return core.results_contract()


#: ``_ansiballz_main`` keywords: those we need, and those we know we may ignore.
ANSIBALLZ_NEEDED = frozenset(("zip_data", "ansible_module", "module_fqn", "params", "profile", "extensions"))
ANSIBALLZ_KNOWN = ANSIBALLZ_NEEDED | {"date_time", "rlimit_nofile"}
#: What the target passes to ``_loader.run_module``.
LOADER_KEYWORDS = frozenset(("json_params", "profile", "module_fqn", "modlib_path", "extensions"))


def _check_ansiballz(core: Core219) -> str | None:
    from ansible._internal._ansiballz import _wrapper
    from ansible.module_utils._internal._ansiballz import _loader

    if not getattr(_wrapper, "_ANSIBALLZ_WRAPPER", False):
        return "the AnsiballZ wrapper has no _ANSIBALLZ_WRAPPER marker"
    keywords = set(_parameters(_wrapper._ansiballz_main))
    if keywords != ANSIBALLZ_KNOWN:
        return "_ansiballz_main takes %s, not %s" % (sorted(keywords), sorted(ANSIBALLZ_KNOWN))
    signature = inspect.signature(_loader.run_module)
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    if not required <= LOADER_KEYWORDS <= set(signature.parameters):
        return "run_module takes %s, we pass %s" % (sorted(signature.parameters), sorted(LOADER_KEYWORDS))
    return None


def _check_async_wrapper(core: Core219) -> str | None:
    spec = importlib.util.find_spec("ansible.modules.async_wrapper")
    if spec is None or not spec.origin:
        return "ansible.modules.async_wrapper not found"
    with open(spec.origin, encoding="utf-8") as fp:
        source = fp.read()
    if core.async_wrapper_usage not in source:
        return "async_wrapper's usage is not %r" % core.async_wrapper_usage
    return None


def _check_result_queue(core: Core219) -> str | None:
    import multiprocessing.queues

    from ansible.executor.process.worker import WorkerProcess
    from ansible.executor.task_queue_manager import FinalQueue

    if not issubclass(FinalQueue, multiprocessing.queues.SimpleQueue):
        return "FinalQueue is not a multiprocessing SimpleQueue"
    if not hasattr(WorkerProcess, "_term"):
        return "WorkerProcess has no _term signal handler"
    return None


def _check_become(core: Core219) -> str | None:
    from ansible.plugins.become import BecomeBase

    class Probe(BecomeBase):
        name = "probe"

        def build_become_command(self, cmd, shell):
            super().build_become_command(cmd, shell)
            return self._build_success_command(cmd, shell)

    plugin = Probe()
    plugin.build_become_command("true", None)
    ident = core.become_id(plugin)
    if not isinstance(ident, str) or not ident or ident not in plugin.success:
        return "BecomeBase's id %r is not in its success marker %r" % (ident, plugin.success)
    return None


def _check_su_prompts(core: Core219) -> str | None:
    """Our pattern must find exactly the prompts su's own code finds."""
    from ansible.plugins.loader import become_loader

    plugin = become_loader.get("su")
    plugin.set_options()
    pattern = core.localized_prompt(plugin)
    if pattern is None:
        return "the su become plugin lists no localized prompts"
    found = re.compile(pattern.encode("utf-8"))
    for sample in ("Password: ", "Passwort:", "Mot de passe : ", "\u30d1\u30b9\u30ef\u30fc\u30c9\uff1a", "Login: ", "password"):
        data = sample.encode("utf-8")
        if bool(found.search(data)) != bool(plugin.check_password_prompt(data)):
            return "su's check_password_prompt and ours disagree on %r" % sample
    return None


def _check_agent_keys(core: Core219) -> str | None:
    from ansible.plugins.connection import ssh

    if not callable(getattr(ssh.Connection, "_populate_agent", None)):
        return "ansible.builtin.ssh has no _populate_agent"
    if "private_key:" not in ssh.DOCUMENTATION:
        return "ansible.builtin.ssh has no private_key option"
    return None


CHECKS: dict[str, t.Callable[[Core219], str | None]] = {
    "poll": _check_poll,
    "result_queue": _check_result_queue,
    "results": _check_results,
    "ansiballz": _check_ansiballz,
    "async_wrapper": _check_async_wrapper,
    "become": _check_become,
    "su_prompts": _check_su_prompts,
    "agent_keys": _check_agent_keys,
}

#: What steps aside when a check fails (for the warning).
FALLBACKS = {
    "poll": "async tasks with poll > 0 are polled as vanilla does",
    "result_queue": "Ctrl-C may hang the run as it can under vanilla",
    "results": "mitogen_async_status runs the builtin async_status, and async polls are vanilla's",
    "ansiballz": "modules run as vanilla's AnsiballZ wrapper, one Python per task",
    "async_wrapper": "async jobs run through vanilla's async_wrapper",
    "become": "tasks that become through plugins other than sudo, su and doas fail",
    "su_prompts": "su with a password answers only an English prompt (mitogen's)",
    "agent_keys": "key data (ansible_ssh_private_key) is not used; use a key file",
}


@functools.lru_cache(maxsize=None)
def _verdict(feature: str, version: str) -> str | None:
    try:
        return CHECKS[feature](adapter_for(version))
    except Exception as exc:  # a check must never fail a task
        return "%s: %s" % (type(exc).__name__, exc)


def contract_ok(feature: str) -> bool:
    """Whether `feature`'s hook fits the installed core; warns once if not."""
    version = core_version()
    problem = _verdict(feature, version)
    if problem is None:
        return True
    warn_once(
        "contract:" + feature,
        "ansible-svc: ansible-core %s does not match what ansible-svc expects (%s); %s." % (version, problem, FALLBACKS[feature]),
    )
    return False


def check_all() -> dict:
    """Run every check once (in the controller, before workers fork)."""
    check_version()
    return {feature: contract_ok(feature) for feature in CHECKS}


def reset() -> None:
    """Forget verdicts and warnings (tests that fake a version or signature)."""
    _verdict.cache_clear()
    _WARNED.clear()


def wrapper_basename(word: str) -> bool:
    """Whether a command word names the async_wrapper module."""
    return posixpath.basename(word) in ("async_wrapper.py", "async_wrapper")


#: The signals Ansible's workers end on, in a handler that calls ``os._exit``.
WORKER_ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def guard_result_queue() -> None:
    """Let a worker's signal handler run only between writes to the result
    queue, never during one.

    On SIGINT/SIGTERM a worker exits at once from its handler
    (``WorkerProcess._term``). If that happens while it writes to the queue
    shared with the controller, the queue's lock stays taken, and the
    controller hangs for good when it puts its own end marker after the
    play. A signal that arrives during a write is held and re-sent to the
    worker right after it. Idempotent; in the controller (before workers
    fork) and in workers (connection-only mode).
    """
    from ansible.executor.task_queue_manager import FinalQueue

    if getattr(FinalQueue.put, "ansible_svc", False) or not contract_ok("result_queue"):
        return
    original = FinalQueue.put

    def put(self, obj):
        pending: list = []
        try:
            held = {signum: signal.signal(signum, lambda n, _f: pending.append(n)) for signum in WORKER_ENDING_SIGNALS}
        except ValueError:  # not the main thread: handlers run only there
            return original(self, obj)
        try:
            return original(self, obj)
        finally:
            for signum, handler in held.items():
                signal.signal(signum, handler)
            for signum in pending:
                os.kill(os.getpid(), signum)

    put.ansible_svc = True
    put.ansible_svc_original = original
    FinalQueue.put = put
