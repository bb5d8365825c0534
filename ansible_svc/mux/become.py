"""Starting a become interpreter through a become plugin's own command line.

Runs in the mux. Global state: none.

The worker's spec carries the plugin's command, success marker and prompt
with two stand-ins (``ansible_svc.target.become``); here they get the
interpreter to start and a fresh random id, and the login interpreter starts
the become interpreter (``proxied``).
"""

from __future__ import annotations

import re
import secrets
import string

from ansible_svc.mux import proxied
from ansible_svc.target import become as target_become

#: Characters a path keeps unquoted in any shell quoting (``shlex.quote``'s).
_SHELL_SAFE = re.compile(r"^[\w@%+=:,./-]+$")


def fresh_id() -> str:
    """A random id like a become plugin's own (32 lowercase letters)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _i in range(32))


def filled(become: dict, python: str, ident: str) -> dict:
    """The become settings with the stand-ins replaced; ValueError when the
    Python path cannot go into a shell command unquoted."""
    if not _SHELL_SAFE.match(python):
        raise ValueError("the Python %r cannot be started through a become plugin's command line; "
                         "set ansible_python_interpreter to a plain path" % (python,))

    def fill(text):
        if text is None:
            return None
        return text.replace(target_become.PYTHON_TOKEN, python).replace(target_become.ID_TOKEN, ident)

    return dict(become, command=fill(become["command"]), success=fill(become["success"]), prompt=fill(become.get("prompt")))


def start(router, login, become: dict, python: str, timeout: float):
    """Start the become interpreter from the context `login`; return its
    context. Raises StreamError with the plugin's failure, as mitogen's
    sudo does."""
    become = filled(become, python, fresh_id())
    kwargs = dict(
        command=become["command"],
        success=become["success"],
        method=become["method"],
        username=become.get("user") or "root",
        password=become.get("password"),
        prompt=become.get("prompt"),
        incorrect=become.get("incorrect") or (),
        missing=become.get("missing") or (),
        python_path=[python],
    )
    return proxied.connect(router, login, "become", kwargs, timeout)
