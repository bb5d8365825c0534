"""Fire-and-forget service calls, used by workers and targets alike.

Runs anywhere mitogen does. Global state: none.
"""

import mitogen.core


def cast_service(recipient, service, method, **kwargs):
    """Call a service method on `recipient` without asking for a reply.

    Unlike ``call_service_async(...).close()``, no reply handler is
    registered, so there is nothing to race with when closing it. Refusals
    are logged by the service.
    """
    tup = (service, method, mitogen.core.Kwargs(kwargs))
    recipient.send(mitogen.core.Message.pickled(tup, handle=mitogen.core.CALL_SERVICE))
