"""Our code that targets import travels minified.

mitogen's module responder strips comments and docstrings (keeping line
numbers) from modules that carry its ``minify_safe`` marker: less to send,
and less for every new target interpreter to compile. Every module of ours
that a target imports must carry it, and must still compile afterwards.
"""
from __future__ import annotations

import ast
import importlib
import os
import zlib

import mitogen.master
import mitogen.minify
import pytest

import ansible_svc

ROOT = os.path.dirname(ansible_svc.__file__)


def _path(name):
    """The source file of our module `name` (a package's ``__init__.py``)."""
    base = os.path.join(ROOT, *name.split('.')[1:])
    return base + '.py' if os.path.exists(base + '.py') else os.path.join(base, '__init__.py')


def _our_imports(name):
    """The ``ansible_svc`` modules that module `name` imports."""
    with open(_path(name)) as fp:
        tree = ast.parse(fp.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith('ansible_svc'):
            for alias in node.names:
                candidate = '%s.%s' % (node.module, alias.name)
                found.add(candidate if os.path.exists(_path(candidate)) else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith('ansible_svc'))
    return found


def _shipped():
    """Every target module, and what they import of ours, transitively."""
    todo = ['ansible_svc.target.' + f[:-3] for f in os.listdir(os.path.join(ROOT, 'target')) if f.endswith('.py')]
    todo = [name.replace('.__init__', '') for name in todo] + ['ansible_svc']
    seen = set()
    while todo:
        name = todo.pop()
        if name in seen or not os.path.exists(_path(name)):
            continue
        seen.add(name)
        todo.extend(_our_imports(name))
    return sorted(seen)


SHIPPED = _shipped()


def test_what_targets_import_is_found():
    assert 'ansible_svc.target.runner' in SHIPPED
    assert 'ansible_svc.rpc' in SHIPPED and 'ansible_svc.names' in SHIPPED
    assert not [name for name in SHIPPED if name.startswith('ansible_svc.mux') or name.startswith('ansible_svc.controller')]


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_module_is_marked_and_minifies_cleanly(name):
    with open(_path(name), 'rb') as fp:
        source = fp.read()
    assert mitogen.master.ModuleResponder.minify_safe_re.search(source), '%s lacks "# !mitogen: minify_safe"' % name
    minified = mitogen.minify.minimize_source(source)
    assert minified.count('\n') == source.count(b'\n')  # tracebacks keep their line numbers
    compile(minified, _path(name), 'exec')
    assert len(minified) < len(source)


def test_the_responder_sends_it_minified():
    broker = mitogen.master.Broker()
    try:
        router = mitogen.master.Router(broker)
        module = importlib.import_module('ansible_svc.target.taskproc')
        tup = router.responder._build_tuple(module.__name__)
        sent = zlib.decompress(tup[3])
        with open(module.__file__, 'rb') as fp:
            source = fp.read()
        assert b'Task processes' in source and b'Task processes' not in sent
        assert sent.count(b'\n') == source.count(b'\n')
    finally:
        broker.shutdown()
        broker.join()
