"""A deduplicating invoker that caches only final answers.

Runs in the mux, one instance per service that asks for it. Global state:
its waiters and its cache of final answers.

mitogen's ``DeduplicatingInvoker`` parks concurrent identical requests and
answers them all from one run, which is what many pollers of one job need.
But it runs the method on the invoker instead of the service, and caches
every answer forever, so a "still running" status would be served forever.
This one runs the service's method, asks the service whether an answer is
final (``service.is_final(method_name, answer)``) and caches only those,
in a bounded table that ``forget`` clears.

Only methods marked with :func:`deduplicate` are deduplicated; the others
run as with mitogen's plain ``Invoker``.
"""

from __future__ import annotations

import collections
import pprint

import mitogen.core
import mitogen.service

#: Final answers kept; the oldest go first.
MAX_CACHED = 10000


def deduplicate(func):
    """Mark a service method: identical concurrent calls run it once."""
    func.ansible_svc_deduplicate = True
    return func


class FinalAnswerInvoker(mitogen.service.DeduplicatingInvoker):

    def __init__(self, service):
        super().__init__(service)
        self._responses = collections.OrderedDict()
        #: Calls received, and calls that ran the method, per method name.
        self.requests = collections.Counter()
        self.runs = collections.Counter()

    def _invoke(self, method_name, kwargs, msg):
        method = getattr(self.service, method_name)
        if not getattr(method, "ansible_svc_deduplicate", False):
            return mitogen.service.Invoker._invoke(self, method_name, kwargs, msg)
        key = self.key_from_request(method_name, kwargs)
        with self._lock:
            self.requests[method_name] += 1
            if key in self._responses:
                return self._responses[key]
            if key in self._waiters:
                self._waiters[key].append(msg)
                return mitogen.service.Service.NO_REPLY
            self._waiters[key] = [msg]
            self.runs[method_name] += 1
            run = self.runs[method_name]
        try:
            response = method(run=run, **kwargs)
        except mitogen.core.CallError as exc:
            response = exc
        except Exception as exc:
            response = mitogen.core.CallError(exc)
        with self._lock:
            waiters = self._waiters.pop(key)
            if not isinstance(response, mitogen.core.CallError) and self.service.is_final(method_name, response):
                self._responses[key] = response
                while len(self._responses) > MAX_CACHED:
                    self._responses.popitem(last=False)
        for waiter in waiters:
            waiter.reply(response)
        return mitogen.service.Service.NO_REPLY

    def forget(self, **match):
        """Drop cached answers of requests whose arguments include `match`."""
        wanted = set((name, _keyable(value)) for name, value in match.items())
        with self._lock:
            for key in [k for k in self._responses if wanted <= set(k[1:])]:
                del self._responses[key]

    def key_from_request(self, method_name, kwargs):
        """A hashable key: the method and its arguments, contexts by id."""
        return (method_name,) + tuple(sorted((name, _keyable(value)) for name, value in kwargs.items()))


def _keyable(value):
    if isinstance(value, mitogen.core.Context):
        return ("context", value.context_id)
    return value if isinstance(value, (str, int, float, bool, type(None))) else pprint.pformat(value)
