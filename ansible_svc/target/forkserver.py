"""Fork server and supervisor of async jobs: a fresh process per interpreter.

Runs on targets as a process of its own: the target interpreter starts it
with :func:`spawn` when it first needs it (see ``asyncjobs``): a fresh
``python -S`` that reads this file's source from its stdin, so it inherits
nothing from the interpreter: no threads, no module state, no mitogen
streams. Standard library only. Global state: none besides its job table.

Each job is forked from this clean parent into a session of its own, so it
survives the loss of the interpreter, the ssh connection, the mux and the
controller. The forked supervisor writes the standard async job file
(``<async dir>/<jid>``, the format vanilla's async_wrapper writes), runs the
module command in its own process group, kills that group when the time
limit passes, writes the result, and exits.

Protocol, one JSON object per line. Requests on stdin::

    {"op": "start", "base": "j123", "module_path": ..., "args_path": ...,
     "argv": [command running the module] or null (derive from the shebang),
     "env": {...}, "cwd": ..., "async_dir": "~/.ansible_async", "limit": 30,
     "tmpdir": path or null}

Events on stdout::

    {"event": "started", "base": ..., "jid": "j123.<pid>", "results_file": ...}
    {"event": "failed", "base": ..., "msg": ...}     (the job did not start)
    {"event": "done", "jid": ...}                    (the supervisor exited)

The server ends at EOF on stdin (its interpreter went away); jobs go on.
"""

# !mitogen: minify_safe

import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import traceback

#: After killing a timed-out job, how long to wait for its output pipes.
KILL_GRACE = 2.0

#: What ``python -S -c`` runs: read a 10-digit length and that much source
#: from stdin (unbuffered, so the requests after it stay unread), run it.
BOOT = """import os
def read(n):
    data = b''
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            raise SystemExit(1)
        data += chunk
    return data
exec(compile(read(int(read(10))), 'ansible-svc-forkserver', 'exec'))
"""


def spawn(python, source):
    """Start a fork server running `source` (this module's) under `python`."""
    proc = subprocess.Popen(
        [python, "-S", "-c", BOOT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )
    data = source.encode("utf-8")
    proc.stdin.write(b"%010d" % len(data) + data)
    proc.stdin.flush()
    return proc


def write_job_file(path, data):
    """Replace the job file atomically, as a reader must never see half."""
    tmp = "%s.tmp" % (path,)
    with open(tmp, "w") as fp:
        fp.write(json.dumps(data))
    os.rename(tmp, path)


def job_path(async_dir, jid):
    """Where the job file of `jid` lives, as async_wrapper puts it."""
    return os.path.join(os.path.expanduser(async_dir), jid)


def module_argv(module_path, args_path):
    """The command vanilla's async_wrapper runs: the module file's shebang
    interpreter (with its arguments), the file, and the args file if any."""
    argv = [module_path]
    with open(module_path, "rb") as fp:
        head = fp.read(1024)
    if head.startswith(b"#!") and b"\n" in head:
        argv = head[2:head.index(b"\n")].decode("utf-8", "surrogateescape").split() + argv
    if args_path:
        argv.append(args_path)
    return argv


def json_result(stdout):
    """Parse a module's stdout as vanilla's async_wrapper does, with its
    words: the JSON object between leading and trailing junk (raising its
    ValueErrors when there is none), and a warning about trailing junk."""
    lines = stdout.splitlines()
    for start, line in enumerate(lines):
        if line.strip().startswith("{"):
            break
    else:
        raise ValueError("No start of json char found")
    lines = lines[start:]
    for junk, line in enumerate(reversed(lines)):
        if line.strip().endswith("}"):
            break
    else:
        raise ValueError("No end of json char found")
    result = json.loads("\n".join(lines[:len(lines) - junk]))
    if junk:
        warnings = result.get("warnings", [])
        if not isinstance(warnings, list):
            warnings = [warnings]
        result["warnings"] = warnings + ["Module invocation had junk after the JSON data: %s" % "\n".join(lines[len(lines) - junk:])]
    return result


def wrapped_command(request):
    """What async_wrapper calls the command in its failure results: the
    command it was given (2.21 on), or the module and its args file."""
    if request.get("argv"):
        return " ".join(shlex.quote(word) for word in request["argv"])
    return " ".join([request["module_path"]] + ([request["args_path"]] if request.get("args_path") else []))


def run_job(request, jid):
    """Run the module command; return the job file's final content, in
    vanilla async_wrapper's words for every failure."""
    env = dict(os.environ)
    env.update(request.get("env") or {})
    try:
        argv = request.get("argv") or module_argv(request["module_path"], request.get("args_path"))
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # None: where the interpreter started, as the shell that runs
            # vanilla's async_wrapper (the login's home, also for become).
            cwd=request.get("cwd") or None,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return {"failed": True, "cmd": wrapped_command(request), "msg": str(exc), "outdata": "", "stderr": "", "ansible_job_id": jid}
    limit = request.get("limit") or None
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            proc.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            pass  # something outside the group holds the pipes; give up on them
        proc.wait()
        return timeout_result(proc.pid)
    return module_result(request, jid, out, err)


def module_result(request, jid, out, err):
    """The job file's final content for a module that printed `out` and
    `err` (bytes), as async_wrapper writes it."""
    out = out.decode("utf-8", "surrogateescape")
    err = err.decode("utf-8", "surrogateescape")
    try:
        result = json_result(out)
        if err:
            result["stderr"] = err
    except Exception:
        return {
            "failed": True,
            "cmd": wrapped_command(request),
            "data": out,
            "stderr": err,
            "msg": traceback.format_exc(),
            "ansible_job_id": jid,
        }
    return result


def timeout_result(child_pid):
    """The job file of a job killed at its time limit, as async_wrapper
    writes it (the controller recognises this shape: ``async_jobs``)."""
    return {"msg": "Timeout exceeded", "failed": True, "child_pid": child_pid}


def supervise(request, notify_fd, run=run_job):
    """Body of a forked job supervisor; never returns. `run` runs the job
    and returns the job file's final content: by default the module
    command, as a new process (``taskproc`` passes a warm fork instead)."""
    status = 0
    try:
        os.setsid()
        os.umask(0o022)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, notify_fd)
        os.closerange(notify_fd + 1, 65536)
        jid = "%s.%d" % (request["base"], os.getpid())
        path = job_path(request["async_dir"], jid)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_job_file(path, {"started": True, "finished": False, "ansible_job_id": jid})
        except OSError as exc:
            tell(notify_fd, {"event": "failed", "msg": "could not create directory: %s - %s" % (os.path.dirname(path), exc)})
            os._exit(1)
        tell(notify_fd, {"event": "started", "jid": jid, "results_file": path})
        try:
            result = run(request, jid)
        except Exception:
            result = {"failed": True, "msg": traceback.format_exc(), "ansible_job_id": jid}
        write_job_file(path, result)
        if request.get("tmpdir"):
            shutil.rmtree(request["tmpdir"], ignore_errors=True)
    except BaseException:
        status = 1
    os._exit(status)


def tell(fd, event):
    data = (json.dumps(event) + "\n").encode("utf-8")
    while data:
        data = data[os.write(fd, data):]


class Job(object):
    __slots__ = ("base", "pid", "jid", "buf", "told")

    def __init__(self, base, pid):
        self.base = base
        self.pid = pid
        self.jid = None
        self.buf = b""
        self.told = False


class Server(object):
    """The select loop: requests in, supervisors' events out."""

    def __init__(self, in_fd=0, out_fd=1):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.jobs = {}  # notify read fd -> Job

    def start(self, request):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            supervise(request, write_fd)
        os.close(write_fd)
        self.jobs[read_fd] = Job(request["base"], pid)

    def on_job_output(self, fd):
        job = self.jobs[fd]
        data = os.read(fd, 65536)
        if data:
            job.buf += data
            while b"\n" in job.buf:
                line, job.buf = job.buf.split(b"\n", 1)
                event = json.loads(line.decode("utf-8"))
                event["base"] = job.base
                job.jid = event.get("jid", job.jid)
                job.told = True
                tell(self.out_fd, event)
            return
        os.close(fd)
        del self.jobs[fd]
        os.waitpid(job.pid, 0)
        if job.jid is not None:
            tell(self.out_fd, {"event": "done", "jid": job.jid})
        elif not job.told:
            tell(self.out_fd, {"event": "failed", "base": job.base, "msg": "the job supervisor died before the job started"})

    def serve(self):
        buf = b""
        while True:
            ready = select.select([self.in_fd] + list(self.jobs), [], [])[0]
            for fd in ready:
                if fd != self.in_fd:
                    self.on_job_output(fd)
                    continue
                data = os.read(fd, 65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    request = json.loads(line.decode("utf-8"))
                    if request.get("op") == "start":
                        self.start(request)


def main():
    try:
        Server().serve()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
