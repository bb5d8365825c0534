"""Child interpreters started from a target interpreter with our own
connection classes: a become interpreter through a become plugin's command
line (``become``), and the next hop's login through a bastion (``ssh``).

Runs in target interpreters (called by the mux: ``ansible_svc.mux.proxied``).
Global state: none.

This is the target half of mitogen's proxied connect, which would look the
connection class up among ``mitogen.*`` modules only.
"""

# !mitogen: minify_safe

import mitogen.core
import mitogen.parent

from ansible_svc.target import become, ssh

#: The connection classes a target may start children with.
KINDS = {"become": become.Connection, "ssh": ssh.SshConnection}


@mitogen.core.takes_econtext
def connect_here(kind, kwargs, econtext):
    """Start a `kind` child of this interpreter; what mitogen's proxied
    connect answers: ``{"id", "name", "msg"}``."""
    mitogen.parent.upgrade_router(econtext)
    try:
        context = econtext.router._connect(klass=KINDS[kind], **kwargs)
    except mitogen.core.StreamError as exc:
        return {"id": None, "name": None, "msg": str(exc)}
    return {"id": context.context_id, "name": context.name, "msg": None}
