"""The mux's disk cache of served code: what it keeps, when it is trusted.

Real mitogen routers (no connections): the module responder builds what it
would send a target, the cache saves it, and a new router starts from it.
"""
from __future__ import annotations

import json
import os

import mitogen.core
import mitogen.master
import mitogen.parent
import pytest

from ansible_svc.mux import serve_cache
from ansible_svc.mux.server import ALLOWED_IMPORTS, BLOCKED_IMPORTS

SERVED = 'ansible_svc.target.payloads'
OTHER = 'ansible_svc.target.wrapper'


@pytest.fixture
def routers(tmp_path, monkeypatch):
    """A factory of routers configured as the mux configures its own."""
    monkeypatch.setenv(serve_cache.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    monkeypatch.setattr(mitogen.parent, '_get_core_source', mitogen.parent._get_core_source)
    made = []

    def make():
        broker = mitogen.master.Broker()
        router = mitogen.master.Router(broker)
        for prefix in ALLOWED_IMPORTS:
            router.responder.whitelist_prefix(prefix)
        for prefix in BLOCKED_IMPORTS:
            router.responder.blacklist_prefix(prefix)
        made.append(broker)
        return router

    yield make
    for broker in made:
        broker.shutdown()
        broker.join()


def _run(router):
    """What one mux run does with the cache: load, serve, save."""
    cache = serve_cache.ServeCache.load(router)
    tup = router.responder._build_tuple(SERVED)
    router.responder._build_tuple(OTHER)
    core = mitogen.parent._get_core_source()
    cache.save(router)
    return cache, tup, core


def test_a_second_run_serves_what_the_first_built(routers, tmp_path):
    first, tup, core = _run(routers())
    assert first.path.startswith(str(tmp_path / 'cache'))
    assert oct(os.stat(first.path).st_mode & 0o777) == '0o600'
    assert oct(os.stat(os.path.dirname(first.path)).st_mode & 0o777) == '0o700'
    router = routers()
    second = serve_cache.ServeCache.load(router)
    assert router.responder._cache[SERVED] == tup
    assert mitogen.parent._get_core_source() == core
    second.save(router)
    assert not second.changed  # nothing new: the file is not rewritten


def test_a_changed_source_file_is_built_again(routers):
    first, _, _ = _run(routers())
    data = json.load(open(first.path))
    data['modules'][SERVED]['stat'][1] -= 1  # as if the file changed since
    with open(first.path, 'w') as fp:
        json.dump(data, fp)
    router = routers()
    serve_cache.ServeCache.load(router)
    assert SERVED not in router.responder._cache
    assert OTHER in router.responder._cache


def test_a_module_the_policy_refuses_is_never_served_from_the_cache(routers):
    first, _, _ = _run(routers())
    data = json.load(open(first.path))
    # A forged entry for a controller-only module (the path exists, fresh).
    import ansible_svc.mux.server as forged
    st = os.stat(forged.__file__)
    data['modules']['ansible_svc.mux.server'] = dict(data['modules'][SERVED], path=forged.__file__,
                                                      stat=[st.st_size, st.st_mtime_ns])
    with open(first.path, 'w') as fp:
        json.dump(data, fp)
    router = routers()
    serve_cache.ServeCache.load(router)
    assert SERVED in router.responder._cache
    assert 'ansible_svc.mux.server' not in router.responder._cache


@pytest.mark.parametrize('what', ['directory', 'file'])
def test_a_cache_others_may_write_is_ignored(routers, what):
    first, _, _ = _run(routers())
    os.chmod(os.path.dirname(first.path) if what == 'directory' else first.path, 0o777 if what == 'directory' else 0o666)
    router = routers()
    cache = serve_cache.ServeCache.load(router)
    assert SERVED not in router.responder._cache and cache.core is None


def test_a_malformed_file_is_ignored_and_replaced(routers):
    first, _, _ = _run(routers())
    with open(first.path, 'w') as fp:
        fp.write('{"core": ')
    second, tup, _ = _run(routers())
    assert json.load(open(second.path))['modules'][SERVED]['path'] == tup[2]


def test_off_switch(routers, monkeypatch):
    monkeypatch.setenv(serve_cache.CACHE_DIR_ENV, 'off')
    cache, _, _ = _run(routers())
    assert cache.path is None
