"""Module payloads (AnsiballZ zips) in a target interpreter, and the import
hook that serves their code.

Runs in target interpreters. Global state: none; the interpreter's one
:class:`PayloadStore` lives in ``modules.STATE``.

A payload arrives once per interpreter (``filecache``, by content hash).
The store keeps its sources, compiled once, and a copy of the zip on disk
(modules that re-execute themselves, ``respawn_module``, need a file). It
also imports, once, the core ``module_utils`` a payload ships into the
interpreter itself (*preloading*), so that the task processes it forks
start with them imported.
"""

# !mitogen: minify_safe

import atexit
import importlib
import importlib.abc
import importlib.util
import io
import logging
import os
import shutil
import sys
import tempfile
import types
import zipfile
import zipimport

import mitogen.core

from ansible_svc.target import filecache

#: How long a worker's pushed payload may take to arrive from the mux.
PAYLOAD_TIMEOUT = 120.0

#: Namespaces the payload owns, as the AnsiballZ zip does on sys.path[0].
OWNED_PREFIXES = ("ansible", "ansible_collections")

#: Imported once into the long-lived interpreter from the first payload that
#: has them, so that forked tasks skip importing them (~40 ms a task). Every
#: new-style module runs through the loader, which imports module_utils.basic.
PRELOAD = ("ansible.module_utils._internal._ansiballz._loader",)

#: Also imported once, from each payload that ships them: the core
#: module_utils its module needs (never collections' code, never modules).
PRELOAD_PREFIX = "ansible.module_utils."

#: Name prefix of the per-interpreter payload dirs (then pid and random).
PAYLOAD_DIR_PREFIX = "ansible-svc-payloads-"


class Payload(object):
    """One AnsiballZ zip: its sources by module name, compiled lazily once.

    ``warm`` is false until the store has compiled every source and
    preloaded what it takes from it (``PayloadStore.warm``)."""

    def __init__(self, key, path, data):
        self.key = key
        self.path = path
        self.warm = False
        self.entries = {}
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if not name.endswith(".py"):
                    continue
                parts = name[:-3].split("/")
                is_pkg = parts[-1] == "__init__"
                if is_pkg:
                    parts.pop()
                self.entries[".".join(parts)] = (name, zf.read(name), is_pkg)
        self._code = {}

    def code(self, fullname):
        code = self._code.get(fullname)
        if code is None:
            name, source, _is_pkg = self.entries[fullname]
            code = compile(source, os.path.join(self.path, name), "exec", dont_inherit=True)
            self._code[fullname] = code
        return code


class PayloadFinder(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Serves the payload's modules, and owns its namespaces as a zip would."""

    def __init__(self, payload):
        self.payload = payload

    def find_spec(self, fullname, path=None, target=None):
        entry = self.payload.entries.get(fullname)
        if entry is None:
            return None
        name, _source, is_pkg = entry
        spec = importlib.util.spec_from_loader(fullname, self, origin=os.path.join(self.payload.path, name), is_package=is_pkg)
        spec.has_location = True
        if is_pkg:
            # Submodules come only from the payload, as from the zip.
            spec.submodule_search_locations = []
        return spec

    def is_package(self, fullname):
        return self.payload.entries[fullname][2]

    def get_source(self, fullname):
        return self.payload.entries[fullname][1].decode("utf-8")

    def get_code(self, fullname):
        return self.payload.code(fullname)

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)


class PayloadStore(object):
    """The payloads one interpreter has, and what it preloaded from them.

    Not thread-safe by itself: callers hold the interpreter's state lock.
    """

    def __init__(self):
        #: key -> Payload
        self.payloads = {}
        #: The private directory holding each zip once, made on first use
        #: by the process `owner` (forked task processes inherit the store).
        self.directory = None
        self.owner = None
        #: Modules imported into this interpreter by ``warm``: name -> the
        #: source they were loaded from (None: not a payload file, e.g. a
        #: namespace).
        self.preloaded = {}

    def get(self, router, key, given_up):
        """The payload `key`, fetched from the local file cache (waiting
        for the worker's push, bounded) the first time. Not warm yet then."""
        payload = self.payloads.get(key)
        if payload is None:
            data = self._fetch(router, key, given_up)
            payload = self.add(router, key, data)
        elif not os.path.exists(payload.path):
            # An earlier task removed it (vanilla gives each task its own copy).
            self._write(router, key, self._fetch(router, key, given_up))
        return payload

    def add(self, router, key, data):
        payload = Payload(key, self._write(router, key, data), data)
        # The task puts the zip first on sys.path: every import it makes
        # (stdlib ones too) asks the zip first. Read its directory once
        # here rather than in every task.
        sys.path_importer_cache[payload.path] = zipimport.zipimporter(payload.path)
        self.payloads[key] = payload
        return payload

    @staticmethod
    def _fetch(router, key, given_up):
        return bytes(filecache.get_service(router).get_bounded(key, PAYLOAD_TIMEOUT, given_up=given_up))

    def warm(self, payload):
        """Compile every source of `payload` and preload what it ships, so
        that the task processes forked from now on share both."""
        if payload.warm:
            return
        for fullname in payload.entries:
            payload.code(fullname)
        self._preload(payload)
        payload.warm = True

    def _preload(self, payload):
        """Import, once each, the module loader and the core ``module_utils``
        that `payload` ships, from `payload`.

        Only imports happen here, never module code: forked tasks start from
        this clean, warm state, and skip importing what their module needs.
        A payload whose sources differ from what is loaded already adds
        nothing.
        """
        if not all(name in payload.entries for name in PRELOAD):
            return
        if any(self.preloaded[name] != entry[1] for name, entry in payload.entries.items() if name in self.preloaded):
            return
        wanted = [name for name in list(PRELOAD) + sorted(payload.entries) if name.startswith(PRELOAD_PREFIX) or name in PRELOAD]
        wanted = [name for name in wanted if name not in sys.modules]
        if not wanted:
            return
        # module_utils.basic imports __main__, which mitogen children lack; a
        # stub keeps mitogen's importer from asking the mux for one.
        sys.modules.setdefault("__main__", types.ModuleType("__main__"))
        finder = PayloadFinder(payload)
        sys.meta_path.insert(0, finder)
        try:
            for name in wanted:
                try:
                    importlib.import_module(name)
                except (Exception, SystemExit):
                    # The task that needs it will import it (and fail) itself.
                    # SystemExit: module_utils.basic refuses a target Python its
                    # core dropped (3.8 from 2.20) by exiting at import; that
                    # must end the task with that message, not this interpreter.
                    logging.getLogger(__name__).debug("preloading %s failed", name, exc_info=True)
        finally:
            sys.meta_path.remove(finder)
        for name in list(sys.modules):
            if name.split(".")[0] in OWNED_PREFIXES and name not in self.preloaded:
                entry = payload.entries.get(name)
                self.preloaded[name] = entry[1] if entry else None

    def stale_in(self, payload):
        """Preloaded modules that `payload` does not ship as is (another
        source, or not at all): its task must not see them. The
        interpreter's payload modules are exactly the preloaded ones."""
        entries = payload.entries
        return [name for name, source in self.preloaded.items() if name not in entries or source != entries[name][1]]

    def _write(self, router, key, data):
        """Keep one copy of the zip on disk, in a private per-interpreter dir.

        The directory goes when the interpreter's broker shuts down (mitogen
        children end with os._exit, so atexit alone would never run). Its
        name carries the interpreter's pid, so directories of interpreters
        that were killed are removed by the next interpreter of the same
        account.
        """
        if self.directory is None:
            remove_stale_dirs()
            self.directory = tempfile.mkdtemp(prefix="%s%d-" % (PAYLOAD_DIR_PREFIX, os.getpid()))
            self.owner = os.getpid()
            mitogen.core.listen(router.broker, "shutdown", self.remove_directory)
            atexit.register(self.remove_directory)
        path = os.path.join(self.directory, os.path.basename(key))
        with open(path, "wb") as fp:
            fp.write(data)
        return path

    def remove_directory(self):
        """Remove the payload directory, from the interpreter that made it
        only (a forked child exiting normally must not)."""
        if self.directory is not None and self.owner == os.getpid():
            shutil.rmtree(self.directory, ignore_errors=True)


def unload_owned():
    """Drop every payload-owned module (``ansible*``) from sys.modules."""
    for name in list(sys.modules):
        if name.split(".")[0] in OWNED_PREFIXES:
            del sys.modules[name]


def remove_stale_dirs():
    """Remove this account's payload dirs whose interpreter is gone."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(PAYLOAD_DIR_PREFIX):
            continue
        path = os.path.join(base, name)
        try:
            pid = int(name[len(PAYLOAD_DIR_PREFIX):].split("-", 1)[0])
            if os.stat(path).st_uid != os.getuid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, OSError):
            continue
