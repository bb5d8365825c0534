"""Calls between contexts, used by workers, the mux and targets alike.

Runs anywhere mitogen does. Global state: none.
"""

# !mitogen: minify_safe

import logging

import mitogen.core

LOG = logging.getLogger(__name__)


def connect_with(router, klass, **kwargs):
    """``router.connect`` for a connection class of our own: mitogen's
    looks the class up among ``mitogen.*`` modules by method name."""
    kwargs.setdefault("debug", router.debug)
    kwargs.setdefault("profiling", router.profiling)
    kwargs.setdefault("unidirectional", router.unidirectional)
    kwargs.setdefault("name", None)
    return router._connect(klass, **mitogen.core.Kwargs(kwargs))


def cast_service(recipient, service, method, **kwargs):
    """Call a service method on `recipient` without asking for a reply.

    Unlike ``call_service_async(...).close()``, no reply handler is
    registered, so there is nothing to race with when closing it. Refusals
    are logged by the service.
    """
    tup = (service, method, mitogen.core.Kwargs(kwargs))
    recipient.send(mitogen.core.Message.pickled(tup, handle=mitogen.core.CALL_SERVICE))


def sent_by(context_id):
    """A receiver policy: accept what `context_id` sends, and the notices
    mitogen itself (here or in the mux) sends when it went away; drop and
    log anything else.

    Any target can address any handle of any worker through the mux, so a
    hostile one could otherwise answer another host's call or post its
    result (or a fake "went away"): only the context asked may answer.
    """

    warned = []  # empty until the first drop

    def policy(msg, stream):
        if msg.src_id == context_id:
            return True
        if msg.is_dead and msg.src_id in (mitogen.context_id, mitogen.parent_id):
            # A route to `context_id` was lost, said here or by the mux.
            return True
        # Once per receiver: a flood must not become a flood of log lines.
        (LOG.debug if warned else LOG.warning)(
            "dropped a message from context %s: handle %s answers context %s only", msg.src_id, msg.handle, context_id)
        warned[:] = [True]
        return False

    return policy


def receiver_for(context):
    """A receiver for what `context` sends (and the news that it is gone)."""
    return mitogen.core.Receiver(context.router, respondent=context, policy=sent_by(context.context_id))


def ask(context, msg):
    """Send `msg` to `context`; the receiver gets only its answer."""
    recv = receiver_for(context)
    msg.reply_to = recv.handle
    context.send(msg)
    return recv


def call_async(context, fn, *args, **kwargs):
    """``context.call_async`` whose reply only `context` may send."""
    return ask(context, context.default_call_chain.make_msg(fn, *args, **kwargs))


def call_service_async(recipient, service, method, **kwargs):
    """``recipient.call_service_async`` whose reply only `recipient` may
    send (named so as not to clash with a service's ``context`` argument)."""
    call = (service, method, mitogen.core.Kwargs(kwargs))
    return ask(recipient, mitogen.core.Message.pickled(call, handle=mitogen.core.CALL_SERVICE))
