"""Ansible's housekeeping shell commands, done without a shell.

Runs in target interpreters. Global state: none.

Around modules that need files (``copy``, ``template``, ``script``, async
tasks), Ansible runs small shell commands: expand ``~``, make the remote
temp dir, ``chmod`` uploaded files, remove the temp dir. Each one would cost
a shell process (two, with the login shell). :func:`run` recognizes exactly
the command lines ansible-core's ``sh`` shell plugin builds for these, does
the same with the standard library, and returns what the shell would have
printed. Anything else, any path with characters a shell would interpret
(``$``, quotes, spaces, globs), and any error returns None: the caller then
runs the real shell, which also produces the real error message.
"""

# !mitogen: minify_safe

import os
import re
import shlex
import shutil
import stat

#: A path the shell leaves alone, but for a leading ``~`` or ``~user``.
_PATH = r"~?[A-Za-z0-9_./+-]*"
_NAME = r"[A-Za-z0-9_.+-]+"

_EXPAND_USER = re.compile(r"echo (%s)" % _PATH)
_MKDTEMP = re.compile(
    r'(?:\( umask (?P<umask>[0-7]{1,4}) && )?'
    r'mkdir -p "` echo (?P<base>%s) `"&& mkdir "` echo (?P<path>%s) `" && echo (?P<name>%s)="` echo (?P=path) `"'
    r'(?(umask) \))' % (_PATH, _PATH, _NAME)
)
_CHMOD = re.compile(r"chmod (?P<mode>u\+rwx|u\+rx|u\+x|u\+r) (?P<paths>.+)")
_REMOVE = re.compile(r"rm -f (?P<recurse>-r )?(?P<path>\S+) > /dev/null 2>&1")

_MODE_BITS = {"r": stat.S_IRUSR, "w": stat.S_IWUSR, "x": stat.S_IXUSR}


def run(cmd):
    """``(0, stdout, b"")`` for a housekeeping command done here, else None."""
    body = _body(cmd)
    if body is None:
        return None
    for pattern, action in ((_EXPAND_USER, _expand_user), (_MKDTEMP, _mkdtemp), (_CHMOD, _chmod), (_REMOVE, _remove)):
        match = pattern.fullmatch(body)
        if match:
            try:
                out = action(match)
            except (OSError, ValueError):
                return None
            return None if out is None else (0, out, b"")
    return None


def _body(cmd):
    """The command inside ``<shell> -c '... && sleep 0'``, or None."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    if len(words) == 3 and words[1] == "-c" and os.path.basename(words[0]) in ("sh", "bash", "dash", "ksh", "zsh"):
        cmd = words[2]
    suffix = " && sleep 0"
    return cmd[: -len(suffix)] if cmd.endswith(suffix) else cmd


def _echo(word):
    """What ``echo word`` prints for one of our _PATH words."""
    return os.path.expanduser(word) if word.startswith("~") else word


def _path(word):
    """An absolute path from `word` (a relative one would depend on the
    shell's working directory: leave those to the shell)."""
    path = _echo(word)
    if not os.path.isabs(path):
        raise ValueError(path)
    return path


def _expand_user(match):
    return (_echo(match.group(1)) + "\n").encode()


def current_umask():
    """The process's umask, read without changing it: the umask is shared by
    all threads, and another thread may fork a task process meanwhile (the
    child would keep a passing value)."""
    try:
        with open("/proc/self/status") as fp:
            for line in fp:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)  # no /proc: the shared-value way, last resort
    os.umask(umask)
    return umask


def _mkdirs(path, umask):
    """``mkdir -p`` as under `umask`, without setting the process's umask:
    each directory made is created private, then given its mode."""
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.isdir(parent):
        _mkdirs(parent, umask)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return False
    os.chmod(path, 0o777 & ~umask)
    return True


def _mkdtemp(match):
    base, path = _path(match.group("base")), _path(match.group("path"))
    umask = int(match.group("umask"), 8) if match.group("umask") else current_umask()
    _mkdirs(base, umask)
    os.mkdir(path, 0o700)
    os.chmod(path, 0o777 & ~umask)
    return ("%s=%s\n" % (match.group("name"), path)).encode()


def _chmod(match):
    try:
        paths = shlex.split(match.group("paths"))
    except ValueError:
        return None
    if not all(re.fullmatch(r"/[A-Za-z0-9_./+-]*", p) for p in paths):
        return None
    bits = 0
    for letter in match.group("mode")[2:]:
        bits |= _MODE_BITS[letter]
    for path in paths:
        os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | bits)
    return b""


def _remove(match):
    path = match.group("path")
    if not re.fullmatch(r"/[A-Za-z0-9_./+-]*", path):
        return None
    if match.group("recurse") and os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            return None  # rm without -r refuses a directory: let the shell say so
        os.unlink(path)
    return b""
