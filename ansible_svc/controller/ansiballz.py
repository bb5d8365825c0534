"""Recognise an AnsiballZ module payload and take it apart.

Runs in Ansible worker processes. Global state: the content-addressed
payload directory on the controller (shared by the run's workers and read by
the mux).

Ansible builds every new-style Python module into an AnsiballZ wrapper: a
script that ends in one call, ``_ansiballz_main(key=value, ...)``, carrying
the zipped module with its ``module_utils``, the serialized arguments and a
few settings. With pipelining the wrapper reaches ``exec_command`` as stdin.
Rather than run it in a fresh interpreter, we split it: the zip travels once
per target (by content hash), and each task sends only its arguments.

Letting Ansible build the wrapper keeps everything it decides (module
lookup, ``module_utils`` discovery and redirects, interpreter discovery,
argument serialization profiles) exactly as vanilla.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import tempfile
from dataclasses import dataclass

from ansible_svc.controller import compat

#: Marker line that every AnsiballZ wrapper carries (2.19 to 2.21).
WRAPPER_MARKER = b"_ANSIBALLZ_WRAPPER = True"

#: The call that ends the wrapper.
MAIN_CALL = b"_ansiballz_main("

#: Keyword arguments the wrapper passes that we need to run the module;
#: ``compat`` checks them against the installed core's ``_ansiballz_main``.
REQUIRED_KEYS = tuple(sorted(compat.ANSIBALLZ_NEEDED))


#: Where the zip literal starts in the final call.
ZIP_KEYWORD = b"zip_data='"

#: The last few zips seen in this worker, by their base64 text: loop items
#: and repeated tasks carry the same zip, which is most of the wrapper.
_RECENT_ZIPS: list = []
RECENT_ZIPS_KEPT = 8


class NotAnsiballZ(Exception):
    """The data is not an AnsiballZ wrapper we know how to take apart."""


@dataclass(frozen=True)
class ModulePayload:
    """What a task needs to run a module on a target interpreter."""

    interpreter: str
    module_name: str
    module_fqn: str
    params: bytes
    profile: str
    extensions: dict
    rlimit_nofile: int
    zip_data: bytes
    key: str


def is_wrapper(data: bytes | None) -> bool:
    """An AnsiballZ wrapper we may split: with a layout that ``compat``
    found the installed core to use (else the wrapper runs as vanilla's)."""
    return bool(data) and WRAPPER_MARKER in data[:4096] and compat.contract_ok("ansiballz")


def parse(data: bytes) -> ModulePayload:
    """Take an AnsiballZ wrapper apart; raise :class:`NotAnsiballZ`."""
    if not is_wrapper(data):
        raise NotAnsiballZ("no AnsiballZ marker")
    first_line = data[:data.find(b"\n")].decode("utf-8", "replace")
    if not first_line.startswith("#!"):
        raise NotAnsiballZ("no interpreter line")
    start = data.rfind(MAIN_CALL)
    if start < 0:
        raise NotAnsiballZ("no _ansiballz_main call")
    call, literal = _split_zip_literal(data[start:])
    try:
        tree = ast.parse(call.decode("utf-8"), mode="exec")
        call = tree.body[0].value
        kwargs = {}
        for kw in call.keywords:
            if kw.arg == "date_time":
                continue  # only stamps the zip's sitecustomize entry
            kwargs[kw.arg] = ast.literal_eval(kw.value)
    except (SyntaxError, ValueError, AttributeError, IndexError, UnicodeDecodeError) as exc:
        raise NotAnsiballZ("unexpected wrapper layout: %s" % exc) from exc
    if literal is not None:
        kwargs["zip_data"] = literal
    missing = [k for k in REQUIRED_KEYS if k not in kwargs]
    if missing:
        raise NotAnsiballZ("wrapper lacks %s" % ", ".join(missing))
    zip_data, key = _decode_zip(kwargs["zip_data"])
    return ModulePayload(
        interpreter=first_line[2:].strip(),
        module_name=kwargs["ansible_module"],
        module_fqn=kwargs["module_fqn"],
        params=kwargs["params"].encode("utf-8"),
        profile=kwargs["profile"],
        extensions=kwargs["extensions"],
        rlimit_nofile=int(kwargs.get("rlimit_nofile") or 0),
        zip_data=zip_data,
        key=key,
    )


def parse_file(path: str) -> ModulePayload | None:
    """The payload of the AnsiballZ wrapper in file `path` (a module file
    Ansible uploads); None for any other file."""
    with open(path, "rb") as fp:
        if not is_wrapper(fp.read(4096)):
            return None
        fp.seek(0)
        data = fp.read()
    try:
        return parse(data)
    except NotAnsiballZ:
        return None


def _split_zip_literal(call: bytes):
    """``(call with an empty zip literal, the zip's base64 bytes)``, so that
    only the small rest needs parsing; ``(call, None)`` if not found."""
    begin = call.find(ZIP_KEYWORD)
    end = call.find(b"'", begin + len(ZIP_KEYWORD)) if begin >= 0 else -1
    if end < 0:
        return call, None
    literal = call[begin + len(ZIP_KEYWORD):end]
    return call[:begin] + b"zip_data=''" + call[end + 1:], literal


def _decode_zip(literal):
    """The zip and its SHA-1 from its base64 text, remembered per worker."""
    if isinstance(literal, str):
        literal = literal.encode("ascii")
    for seen, zip_data, key in _RECENT_ZIPS:
        if seen == literal:
            return zip_data, key
    zip_data = base64.b64decode(literal)
    key = hashlib.sha1(zip_data).hexdigest()
    _RECENT_ZIPS.insert(0, (literal, zip_data, key))
    del _RECENT_ZIPS[RECENT_ZIPS_KEPT:]
    return zip_data, key


def store(payload: ModulePayload, directory: str) -> str:
    """Write the payload's zip under its hash once; return the file path."""
    path = os.path.join(directory, payload.key + ".zip")
    if not os.path.exists(path):
        try:
            # Not makedirs: the parent is the mux's directory, and a worker
            # outliving its run must not create it again after the mux
            # removed it (FileNotFoundError then).
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".part-")
        with os.fdopen(fd, "wb") as fp:
            fp.write(payload.zip_data)
        os.rename(tmp, path)
    return path
