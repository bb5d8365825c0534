"""Async jobs, on the controller's side: recognizing them, shaping results.

Runs in Ansible worker processes. Global state: none.

Ansible starts an async task by uploading the module and its
``async_wrapper`` to a temporary directory and running::

    [ENV=...] <interpreter> <tmp>/async_wrapper.py <jid> <limit> <module> <argsfile or _> [-preserve_tmp]   (2.19, 2.20)
    [ENV=...] <interpreter> <tmp>/async_wrapper.py <jid> <limit> <true|false> <module> <command...>      (2.21)

We recognize that command line (its arguments through ``compat``) and start
the job ourselves (detached, from the target's fork server), so the wrapper
itself never runs. A command line we do not recognise, or a core whose
async_wrapper does not match ``compat``'s check, runs vanilla's way. What
comes back is shaped exactly as ``async_status`` shapes it.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass

from ansible_svc.controller import compat

#: Vanilla's default ``async_dir`` shell option.
DEFAULT_ASYNC_DIR = "~/.ansible_async"

_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: What ansible-core up to 2.20 appends to every command.
_SHELL_TAIL = ["&&", "sleep", "0"]


@dataclass
class AsyncCommand:
    """What Ansible asked the async_wrapper to do."""

    base_jid: str
    limit: int
    module_path: str
    args_path: str | None
    preserve_tmp: bool
    #: The command running the module, when Ansible gives it (2.21 on);
    #: before, the job derives it from the module's shebang as async_wrapper
    #: did.
    argv: list | None = None

    @property
    def tmpdir(self) -> str | None:
        """The directory the job removes when done, as async_wrapper does."""
        directory = posixpath.dirname(self.module_path)
        if self.preserve_tmp or "-tmp-" not in directory:
            return None
        return directory


def parse_command(cmd: str) -> AsyncCommand | None:
    """The async_wrapper invocation in `cmd` (as the shell plugin wrapped
    it: ``/bin/sh -c '...'``), or None when `cmd` is something else."""
    if "async_wrapper" not in cmd:
        return None
    try:
        words = shlex.split(cmd)
        if len(words) == 3 and words[1] == "-c":
            words = shlex.split(words[2])
    except ValueError:
        return None
    if words[-3:] == _SHELL_TAIL:
        words = words[:-3]
    while words and _ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    wrapper = [i for i, word in enumerate(words) if compat.wrapper_basename(word)]
    if not wrapper or not compat.contract_ok("async_wrapper"):
        return None
    fields = compat.adapter().async_wrapper_args(words[wrapper[0] + 1:])
    return None if fields is None else AsyncCommand(**fields)


def started_result(jid: str, results_file: str, command: AsyncCommand) -> dict:
    """What async_wrapper prints when it has started a job."""
    return {
        "failed": False,
        "started": True,
        "finished": False,
        "ansible_job_id": jid,
        "results_file": results_file,
        "_ansible_suppress_tmpdir_delete": not command.preserve_tmp,
    }


def job_data(jid: str, text: str | None) -> dict:
    """The async_status module's reading of a job file's content."""
    if text is None:
        return {"failed": True, "msg": "could not find job", "ansible_job_id": jid, "started": True, "finished": True}
    try:
        data = json.loads(text)
    except ValueError:
        if not text:
            return {"ansible_job_id": jid, "started": True, "finished": False}
        return {"failed": True, "msg": "Could not parse job output: %s" % text, "ansible_job_id": jid, "started": True, "finished": True}
    if not isinstance(data, dict):
        return {"failed": True, "msg": "Could not parse job output: %s" % text, "ansible_job_id": jid, "started": True, "finished": True}
    if "started" not in data:
        data["finished"] = True
        data["ansible_job_id"] = jid
    elif "finished" not in data:
        data["finished"] = False
    return data


def killed_at_limit(status: dict) -> bool:
    """Whether a job's status is async_wrapper's record of a job killed at
    its time limit (``forkserver.timeout_result`` writes the same)."""
    return bool(status.get("failed")) and status.get("msg") == "Timeout exceeded" and "child_pid" in status


def status_result(action, jid: str, answer: dict) -> dict:
    """A job file reading (``answer`` from the target or the mux) shaped
    exactly as the builtin ``async_status`` action returns it; `action` is
    the ActionBase whose result parsing applies."""
    from ansible.utils.vars import merge_hash

    results = {
        "started": True,
        "finished": False,
        "stdout": "",
        "stderr": "",
        "stdout_lines": [],
        "stderr_lines": [],
        "ansible_job_id": jid,
        "results_file": answer.get("results_file"),
    }
    if answer.get("running"):
        data = {"ansible_job_id": jid, "started": True, "finished": False}
    else:
        data = job_data(jid, answer.get("text"))
    data = compat.adapter().parse_module_output(action, data)
    for stream in ("stdout", "stderr"):
        if stream in data and "%s_lines" % stream not in data:
            data["%s_lines" % stream] = (data[stream] or "").splitlines()
    results = merge_hash(results, data)
    for flag in ("started", "finished"):
        results[flag] = bool(results[flag])
    return results
