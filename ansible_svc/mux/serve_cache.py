"""A disk cache of the code the mux serves to targets, kept across runs.

Runs in the mux. Global state: none; ``load`` changes mitogen's core source
hook and the router's module responder.

Every run's mux starts with nothing prepared, and a target's first task
waits while the mux minifies and compresses mitogen's core for the
bootstrap (about 60 ms) and then builds each module the target imports
(finding its related modules, minifying mitogen's, compressing: about
70-110 ms in all). Both results depend only on the source files, so the
mux keeps them in one file per mux Python and mitogen version, in a private
directory, and starts the next run from it.

The file holds code that targets will run, so it is used only from a
directory and file that the mux's own user owns and nobody else may write
(``safe``); a file that is unsafe, unreadable or malformed is ignored, and
the mux builds everything as before. Each module entry is used only while
its source file has the size and modification time it was built from, and
only if the responder's policy still allows the module.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import os
import stat
import sys
import tempfile

import mitogen
import mitogen.core
import mitogen.minify
import mitogen.parent

import ansible_svc

LOG = logging.getLogger(__name__)

#: Environment variable naming the cache directory; "off" disables it.
CACHE_DIR_ENV = "ANSIBLE_SVC_CACHE_DIR"

#: Bumped when the file's layout changes.
FORMAT = 1


def cache_dir() -> str | None:
    """Where the cache lives: ``$ANSIBLE_SVC_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/ansible-svc`` or ``~/.cache/ansible-svc``; None when
    switched off."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return None if configured == "off" else configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ansible-svc")


def cache_path(directory: str, responder) -> str:
    """The file for this mux: its Python, mitogen, ansible-svc and the
    responder's allow and block lists all shape what it serves."""
    key = json.dumps([FORMAT, sys.executable, sys.version, mitogen.__version__, ansible_svc.__version__,
                      sorted(responder.policy.overrides), sorted(responder.policy.blocks)])
    return os.path.join(directory, "serve-%s.json" % hashlib.sha256(key.encode()).hexdigest()[:24])


def safe(path: str) -> bool:
    """Owned by us and writable by nobody else (a file or a directory)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode):
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class ServeCache(object):
    """What one mux loaded from its cache file, and how to update it."""

    def __init__(self, path: str | None):
        self.path = path
        self.core = None  # (digest of mitogen.core's source, minified source)
        self.modules = {}  # fullname -> entry (as in the file)
        self.changed = False

    # -- loading ---------------------------------------------------------------

    @classmethod
    def load(cls, router) -> "ServeCache":
        """Read the cache (if any), and hook mitogen to use and fill it."""
        directory = cache_dir()
        cache = cls(cache_path(directory, router.responder) if directory else None)
        if cache.path and safe(directory) and safe(cache.path):
            try:
                with open(cache.path) as fp:
                    data = json.load(fp)
                cache.core = tuple(data["core"]) if data.get("core") else None
                cache.modules = dict(data["modules"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                LOG.debug("serve cache %s ignored: %s", cache.path, exc)
                cache.core, cache.modules = None, {}
        cache._install(router)
        return cache

    def _install(self, router) -> None:
        mitogen.parent._get_core_source = self._core_source
        responder = router.responder
        for fullname, entry in list(self.modules.items()):
            if not self._fresh(entry) or responder.policy.denied(fullname):
                del self.modules[fullname]
                self.changed = True
                continue
            responder._cache[fullname] = (
                fullname,
                entry["pkg_present"],
                entry["path"],
                mitogen.core.Blob(base64.b64decode(entry["compressed"])),
                entry["related"],
            )

    @staticmethod
    def _fresh(entry) -> bool:
        try:
            st = os.stat(entry["path"])
        except (OSError, KeyError, TypeError):
            return False
        return [st.st_size, st.st_mtime_ns] == entry.get("stat")

    def _core_source(self) -> str:
        """mitogen.core's source minified, as the master's hook makes it."""
        source = inspect.getsource(mitogen.core)
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        if self.core and self.core[0] == digest:
            return self.core[1]
        minified = mitogen.minify.minimize_source(source)
        self.core = (digest, minified)
        self.changed = True
        return minified

    # -- saving ----------------------------------------------------------------

    def save(self, router) -> None:
        """Write what this run built, if anything, for the next run."""
        for fullname, tup in list(router.responder._cache.items()):
            pkg_present, path, compressed, related = tup[1:]
            if fullname in self.modules or compressed is None or not path or fullname == "__main__":
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            self.modules[fullname] = {
                "pkg_present": pkg_present,
                "path": path,
                "stat": [st.st_size, st.st_mtime_ns],
                "compressed": base64.b64encode(bytes(compressed)).decode("ascii"),
                "related": list(related),
            }
            self.changed = True
        if not self.changed or not self.path:
            return
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            if not safe(directory):
                LOG.debug("serve cache not written: %s is not private to this user", directory)
                return
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".serve-")
            with os.fdopen(fd, "w") as fp:
                json.dump({"core": self.core, "modules": self.modules}, fp)
            os.rename(tmp, self.path)
        except OSError as exc:
            LOG.debug("serve cache not written: %s", exc)
