"""Shell commands and file transfer, run inside a target interpreter.

Called by workers through the mux router (``exec_command``, ``put_file``,
``fetch_file`` of the connection plugins). Global state: none; every call
works on its arguments only.
"""

# !mitogen: minify_safe

import os
import pwd
import select
import subprocess
import tempfile
import threading
import time

import mitogen.core

from ansible_svc import names, rpc
from ansible_svc.target import housekeeping

#: Files up to this size travel inside one call message; larger ones stream
#: through the mux's FileService (bounded in-flight window) instead.
INLINE_FILE_LIMIT = 1024 * 1024

#: A streamed file's bytes are acknowledged to the mux in batches of this
#: size; the mux's window (``GrantedFileService.window_size_bytes``) must
#: be at least twice it, or the stream would stall.
ACK_BATCH = 1024 * 1024

#: While a command's pipes stay open, how often to look whether its shell
#: has exited (only then: a command that ends closes them, which wakes us).
EXIT_POLL = 0.1

#: After the shell exited, how long output still in flight may take.
EXIT_GRACE = 0.2

#: Commands running now (pid, which is also their process group): hung up
#: on when the interpreter ends, as sshd hangs up on a session.
RUNNING = set()


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


def run_command(cmd, stdin=None, shell=None, cwd=None, tty=False, term=None):
    """Run `cmd` with ``shell -c`` and return ``(rc, stdout, stderr)``.

    `shell` of None means the account's login shell, as ssh runs a command;
    False means no shell: the command line is split into words and run.
    Output is returned as bytes, untouched, like a pipe would give it, or
    with `tty` (no `stdin`) as a terminal gives it, like ``ssh -tt``: the
    command runs on a pseudo-terminal of its own, stderr joins stdout and
    line ends are CRLF, and ``TERM`` is `term` (the controller's, as ssh
    sends it). Ansible's housekeeping commands (temp dirs, chmod)
    are done without a shell when that gives the same result
    (``housekeeping``).
    """
    if stdin is None:
        done = housekeeping.run(cmd)
        if done is not None:
            rc, out, err = done
            if tty:
                out, err = (out + err).replace(b"\n", b"\r\n"), b""
            return rc, mitogen.core.Blob(out), mitogen.core.Blob(err)
    if shell is False:  # as containers.podman: the words, run without a shell
        import shlex
        argv = shlex.split(cmd)
    else:
        argv = [shell or login_shell(), "-c", cmd]
    if tty and stdin is None:
        return _run_on_tty(argv, cwd, term)
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
    RUNNING.add(proc.pid)
    try:
        if stdin:
            threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
        elif proc.stdin is not None:
            proc.stdin.close()
        stdout, stderr = _read_until_exit(proc, [proc.stdout, proc.stderr])
        return proc.wait(), mitogen.core.Blob(stdout), mitogen.core.Blob(stderr)
    finally:
        RUNNING.discard(proc.pid)


def _run_on_tty(argv, cwd, term):
    """`argv` on a new pseudo-terminal, its controlling tty, as sshd runs a
    session that asked for one: what the terminal shows is the output."""
    import pty
    import termios

    master, slave = pty.openpty()
    env = dict(os.environ, SSH_TTY=os.ttyname(slave))
    env.pop("TERM", None)
    if term:
        env["TERM"] = term

    def take_terminal():
        import fcntl
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True,
                                start_new_session=True, preexec_fn=take_terminal)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    RUNNING.add(proc.pid)
    try:
        with os.fdopen(master, "rb", buffering=0) as terminal:
            output = _read_until_exit(proc, [terminal])[0]
        return proc.wait(), mitogen.core.Blob(output), mitogen.core.Blob(b"")
    finally:
        RUNNING.discard(proc.pid)


def _feed(pipe, data):
    try:
        pipe.write(data)
        pipe.close()
    except OSError:
        pass  # the command did not read it all: as with a pipe


def _read_until_exit(proc, pipes):
    """What came out of `pipes` (one bytes per pipe), read until the shell
    exits (plus a short grace for what is in flight), not until every
    process holding them does: a daemon or ``sleep 20 &`` started by the
    command must not hold the task, as ssh's session ends when the shell
    does. Pipes still open then are closed (their holders get EPIPE, or a
    hangup on a terminal, as when sshd closes the channel)."""
    chunks = {pipe: [] for pipe in pipes}
    open_pipes = list(pipes)
    ended_at = None
    while open_pipes:
        if ended_at is None and proc.poll() is not None:
            ended_at = time.monotonic()
        if ended_at is None:
            wait = EXIT_POLL
        else:
            wait = ended_at + EXIT_GRACE - time.monotonic()
            if wait <= 0:
                break
        ready = select.select(open_pipes, [], [], wait)[0]
        for pipe in ready:
            try:
                data = os.read(pipe.fileno(), 65536)
            except OSError:  # EIO: a terminal's last holder has closed it
                data = b""
            if data:
                chunks[pipe].append(data)
            else:
                open_pipes.remove(pipe)
    for pipe in pipes:
        pipe.close()
    return [b"".join(chunks[pipe]) for pipe in pipes]


def _atomic_write(path, write, mode=None):
    """Write through a temporary file in the same directory, then rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".svc-put-")
    try:
        with os.fdopen(fd, "wb") as fp:
            write(fp)
        if mode is None:
            mode = 0o666 & ~housekeeping.current_umask()
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
    _atomic_write(path, lambda fp: _fetch(mux, source, fp), mode)


def _fetch(mux, source, fp):
    """Write the mux FileService's stream of `source` to `fp`.

    mitogen's own client (``FileService.get``) acknowledges every message;
    this one acknowledges ACK_BATCH bytes at a time, and takes chunks from
    the mux only.
    """
    recv = rpc.receiver_for(mux)
    try:
        meta = mux.call_service(service_name=names.FILES, method_name="fetch", path=source, sender=recv.to_sender())
        received = unacknowledged = 0
        for msg in recv:
            data = msg.decode()
            fp.write(data)
            received += len(data)
            unacknowledged += len(data)
            if unacknowledged >= ACK_BATCH:
                rpc.cast_service(mux, names.FILES, "acknowledge", size=unacknowledged)
                unacknowledged = 0
        if unacknowledged:
            rpc.cast_service(mux, names.FILES, "acknowledge", size=unacknowledged)
    finally:
        recv.close()
    if received != meta["size"]:
        raise IOError("transfer of %s from the controller was interrupted (%d of %d bytes)" % (source, received, meta["size"]))


def file_size(path):
    """Size of `path`, raising the usual OSError when it is missing."""
    return os.stat(path).st_size


def read_chunk(path, offset, size):
    """Return up to `size` bytes of `path` from `offset`."""
    with open(path, "rb") as fp:
        fp.seek(offset)
        return mitogen.core.Blob(fp.read(size))
