"""Shell commands and file transfer, run inside a target interpreter.

Called by workers through the mux router (``exec_command``, ``put_file``,
``fetch_file`` of the connection plugins). Global state: none; every call
works on its arguments only.
"""

import os
import pwd
import subprocess
import tempfile

import mitogen.core
import mitogen.service

from ansible_svc.target import housekeeping

#: Files up to this size travel inside one call message; larger ones stream
#: through the mux's FileService (bounded in-flight window) instead.
INLINE_FILE_LIMIT = 1024 * 1024


def describe():
    """Facts the controller wants once per interpreter."""
    import sys
    return {
        "python": sys.executable,
        "prefix": sys.prefix,
        "version": list(sys.version_info[:3]),
        "uid": os.getuid(),
        "home": os.path.expanduser("~"),
        "pid": os.getpid(),
    }


def resolve_python(command):
    """The executable a command line would start, as that interpreter's
    ``sys.executable`` would name it (PATH looked up, symlinks kept), or None.

    Lets the mux see that ``python3`` and ``/usr/bin/python3`` are the very
    same interpreter, while a venv's ``bin/python`` (a symlink to the system
    one, but another ``sys.prefix``) is not. Command lines with interpreter
    arguments are not resolved: they may behave differently.
    """
    import shlex
    import shutil
    words = shlex.split(command)
    if len(words) == 2 and os.path.basename(words[0]) == "env":
        words = words[1:]
    if len(words) != 1:
        return None
    found = words[0] if os.path.isabs(words[0]) else shutil.which(words[0])
    if not found or not os.access(found, os.X_OK):
        return None
    return os.path.abspath(found)


def login_shell():
    """The account's shell, as ssh would use it to run a command."""
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    if not shell or not os.access(shell, os.X_OK) or shell.endswith(("nologin", "false")):
        return "/bin/sh"
    return shell


def run_command(cmd, stdin=None, shell=None, cwd=None):
    """Run `cmd` with ``shell -c`` and return ``(rc, stdout, stderr)``.

    `shell` of None means the account's login shell, as ssh runs a command.
    Output is returned as bytes, untouched, like a pipe would give it.
    Ansible's housekeeping commands (temp dirs, chmod) are done without a
    shell when that gives the same result (``housekeeping``).
    """
    if stdin is None:
        done = housekeeping.run(cmd)
        if done is not None:
            rc, out, err = done
            return rc, mitogen.core.Blob(out), mitogen.core.Blob(err)
    argv = [shell or login_shell(), "-c", cmd]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        close_fds=True,
        # A new session: no controlling tty, and a command that kills its
        # process group cannot take this interpreter with it.
        start_new_session=True,
    )
    stdout, stderr = proc.communicate(stdin)
    return proc.returncode, mitogen.core.Blob(stdout), mitogen.core.Blob(stderr)


def _atomic_write(path, write, mode=None):
    """Write through a temporary file in the same directory, then rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".svc-put-")
    try:
        with os.fdopen(fd, "wb") as fp:
            write(fp)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_file(path, data, mode=None):
    """Write `data` (bytes) to `path` on the target."""
    _atomic_write(path, lambda fp: fp.write(data), mode)


@mitogen.core.takes_router
def pull_file(path, mux_id, source, mode=None, router=None):
    """Stream `source` (registered with the mux FileService) into `path`."""
    mux = mitogen.core.Context(router, mux_id)

    def write(fp):
        ok, meta = mitogen.service.FileService.get(mux, source, fp)
        if not ok:
            raise IOError("transfer of %s from the controller was interrupted" % (source,))

    _atomic_write(path, write, mode)


def file_size(path):
    """Size of `path`, raising the usual OSError when it is missing."""
    return os.stat(path).st_size


def read_chunk(path, offset, size):
    """Return up to `size` bytes of `path` from `offset`."""
    with open(path, "rb") as fp:
        fp.seek(offset)
        return mitogen.core.Blob(fp.read(size))
