"""Starting an interpreter from another one (a become interpreter from the
login, a target's login from a bastion) with our own connection classes.

Runs in the mux. Global state: none.

The mux half of mitogen's proxied connect (``Router.proxy_connect``); the
target half is ``ansible_svc.target.children``.
"""

from __future__ import annotations

import mitogen.core

from ansible_svc.rpc import call_async
from ansible_svc.target import children

#: Beyond the child's own connect timeout, how long the parent interpreter
#: may take to answer (it bounds the child; this bounds a wedged parent).
PARENT_GRACE = 30.0


def connect(router, via, kind: str, kwargs: dict, timeout: float):
    """Start a `kind` interpreter (``children.KINDS``) from the context `via`
    and return its context; StreamError with the child's failure."""
    kwargs = dict(
        kwargs,
        connect_timeout=timeout,
        remote_name="ansible-svc",
        # What Router.connect sets before connecting.
        debug=router.debug,
        profiling=router.profiling,
        unidirectional=router.unidirectional,
        name=None,
    )
    answer = call_async(via, children.connect_here, kind, mitogen.core.Kwargs(kwargs)).get(timeout=timeout + PARENT_GRACE).unpickle()
    if answer["msg"] is not None:
        raise mitogen.core.StreamError(answer["msg"])
    return router.context_by_id(answer["id"], via_id=via.context_id, name="%s.%s" % (via.name, answer["name"]))
