"""The mux process: started once per ``ansible-playbook`` run by the strategy.

Runs in the mux (``python -m ansible_svc.mux``). Global state: the process
itself: one mitogen broker and router, one service pool, one unix listener.

How it works:

1. A ``svc_*`` strategy starts this process in its own session (so a
   Ctrl-C on the terminal reaches the controller, not the connections) with
   a *lifeline*: the read end of a pipe whose write end only the controller
   holds. Without a strategy (connection-only mode) the first worker that
   needs it starts it, and it *watches the controller's pid* instead.
2. The mux listens on a unix socket (mode 0600) in a private directory,
   prints ``READY`` on stdout and closes it.
3. Workers attach to the socket; targets are children of this router.
4. When the lifeline reads EOF or the watched controller exits (normally,
   crashed or killed), or on SIGTERM, the mux removes its private directory
   and the broker shuts down: every target stream is disconnected and every
   child process reaped, so nothing is left running or on disk.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import select
import shutil
import signal
import sys
import threading
import time

import mitogen.master
import mitogen.service
import mitogen.unix

from ansible_svc import processes
from ansible_svc.mux.connections import ConnectionService
from ansible_svc.mux.doctor import DoctorService
from ansible_svc.mux.files import GrantedFileService
from ansible_svc.mux.jobs import JobResultService
from ansible_svc.mux.routing import ReplyOnlyRouter
from ansible_svc.mux.serve_cache import ServeCache
from ansible_svc.mux.job_status import JobStatusService
from ansible_svc.target.filecache import PushFileCache

LOG = logging.getLogger(__name__)

#: The only packages the mux serves to targets: our target-side code and
#: mitogen. Module code reaches a target only inside the AnsiballZ payload
#: Ansible built for it; anything else a target asks for (a module beside
#: the playbook, the controller's ``ansible`` or ``yaml``) is refused, so a
#: target reads nothing of the controller it was not sent, and a module
#: that imports what its target lacks fails as under vanilla.
ALLOWED_IMPORTS = ("ansible_svc", "mitogen")

#: Parts of the allowed packages that run only on the controller.
BLOCKED_IMPORTS = ("ansible_svc.controller", "ansible_svc.mux")

#: How long the orderly shutdown may take before the process just exits.
SHUTDOWN_TIMEOUT = 10.0


def _configure_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[ansible-svc mux %(process)d] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    if verbosity >= 5:
        root.setLevel(logging.DEBUG)
        # Never mitogen's DEBUG, here or forwarded from targets: it traces
        # every call's arguments and every result, no_log ones included.
        logging.getLogger("mitogen").setLevel(logging.INFO)
    elif verbosity >= 4:
        root.setLevel(logging.WARNING)
        logging.getLogger("ansible_svc").setLevel(logging.DEBUG)
    else:
        root.setLevel(logging.WARNING)
        # mitogen logs every lost child at ERROR; the worker reports those.
        logging.getLogger("mitogen").setLevel(logging.CRITICAL)


def wait_for_lifeline(lifeline_fd: int) -> None:
    """Return when the controller's end of the lifeline pipe is closed."""
    while True:
        try:
            if not os.read(lifeline_fd, 4096):
                return
        except InterruptedError:
            continue
        except OSError:
            return


def wait_for_exit(pid: int, start: str) -> None:
    """Return when process `pid`, started at `start`, has exited.

    A pidfd (Linux 5.3+) becomes readable when the process exits, child of
    ours or not; elsewhere the process is looked at twice a second.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        # Checked after opening the pidfd: a pid reused meanwhile is seen.
        if not processes.alive(pid, start):
            return
        if pidfd is not None:
            select.select([pidfd], [], [])
            return
        while processes.alive(pid, start):
            time.sleep(0.5)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def serve(socket_path: str, controller_gone, pool_size: int) -> None:
    """Serve until `controller_gone()` returns."""
    broker = mitogen.master.Broker()
    # Targets may talk only to the mux, and to a worker only to answer its
    # calls: a compromised target reaches no other target and no worker.
    router = ReplyOnlyRouter(broker)
    for prefix in ALLOWED_IMPORTS:
        router.responder.whitelist_prefix(prefix)
    for prefix in BLOCKED_IMPORTS:
        router.responder.blacklist_prefix(prefix)
    serve_cache = ServeCache.load(router)

    connections = ConnectionService(router)
    jobs = JobResultService(router)
    files = GrantedFileService(router)
    pushed = PushFileCache(router=router)
    pool = mitogen.service.Pool(
        router,
        services=[
            connections,
            jobs,
            JobStatusService(router, jobs),
            files,
            pushed,
            DoctorService(router, connections, jobs, files, pushed),
        ],
        size=pool_size,
    )
    try:
        # The path appears only once the socket listens: a worker that
        # finds it may connect at once (the strategy does not wait for us).
        listening = socket_path + ".new"
        mitogen.unix.Listener.build_stream(router, listening).protocol.path = socket_path
        os.rename(listening, socket_path)
    except OSError as exc:
        # The broker's thread would keep this process alive: end it, so the
        # starter sees the exit at once.
        LOG.error("cannot listen on %s: %s", socket_path, exc)
        _shutdown(broker, router, pool)
        raise SystemExit(1)

    done = threading.Event()

    def watch_controller():
        controller_gone()
        done.set()

    threading.Thread(target=watch_controller, name="controller", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        sys.stdout.write("READY %d\n" % os.getpid())
        sys.stdout.flush()
    except BrokenPipeError:
        # A strategy does not wait for READY: a run that ends at once has
        # closed the pipe already. Its lifeline (or its exit) ends us below.
        pass
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

    while not done.wait(1.0):
        pass
    LOG.debug("shutting down")
    # The controller removes the directory when it ends normally; after a
    # SIGKILL of the controller only we are left to do it.
    shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)
    _shutdown(broker, router, pool)
    serve_cache.save(router)


def _shutdown(broker, router, pool) -> None:
    # Exit hard if the orderly path wedges: nothing may hang at exit.
    timer = threading.Timer(SHUTDOWN_TIMEOUT, os._exit, (1,))
    timer.daemon = True
    timer.start()
    pool.stop(join=False)
    broker.defer(router.disconnect_workers)
    broker.shutdown()
    broker.join()
    timer.cancel()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ansible_svc.mux")
    parser.add_argument("--socket", required=True)
    ends = parser.add_mutually_exclusive_group(required=True)
    ends.add_argument("--lifeline-fd", type=int, help="end when this pipe reads EOF")
    ends.add_argument("--watch", metavar="PID:START", help="end when this process exits")
    parser.add_argument("--pool-size", type=int, default=16)
    parser.add_argument("--verbosity", type=int, default=0)
    args = parser.parse_args(argv)
    _configure_logging(args.verbosity)
    if args.watch:
        pid, start = args.watch.split(":", 1)
        controller_gone = functools.partial(wait_for_exit, int(pid), start)
    else:
        controller_gone = functools.partial(wait_for_lifeline, args.lifeline_fd)
    serve(args.socket, controller_gone, args.pool_size)
    # Skip the interpreter's finalization: its last garbage collection was
    # seen to take seconds (pool threads still around), and the controller
    # waits for this exit.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
