"""Tasks on pool threads: one interpreter serves several workers at once.

Runs in target interpreters. Global state: mitogen's service pool of this
interpreter (sized here, on first contact) and its TaskRunner.

mitogen runs function calls one at a time on the interpreter's main thread.
When several hosts delegate to the same target (``delegate_to: localhost``
from every host of a play), their workers share one interpreter, and vanilla
would run their tasks side by side in separate ssh sessions. So commands and
forked module runs are service calls here, each on a pool thread of its
own, answered when done. Inline module runs stay on the main thread (module
code may set signal handlers, which only the main thread can).
"""

# !mitogen: minify_safe

import mitogen.core
import mitogen.service

from ansible_svc.target import commands, modules

#: Pool threads: tasks of this interpreter that can run at once, plus the
#: few that TaskControl, PushFileCache and FileService calls need.
POOL_SIZE = 36


@mitogen.core.takes_router
def start(router=None):
    """Set this interpreter up to run tasks (on its main thread, as the
    mux's first call), and return the facts the controller wants of it."""
    modules.set_up(router)
    # Not with signals blocked: module and command processes forked from the
    # pool's threads would inherit the mask (vanilla's have none blocked).
    pool = mitogen.service.get_or_create_pool(size=POOL_SIZE, router=router)
    pool.get_service(TaskRunner.name())
    pool.get_service(modules.TaskControl.name())
    return commands.describe()


class TaskRunner(mitogen.service.Service):
    """Commands and forked module jobs, each on a pool thread."""

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"cmd": str})
    def command(self, cmd, stdin=None, shell=None, cwd=None, tty=False, term=None):
        return commands.run_command(cmd, stdin=stdin, shell=shell, cwd=cwd, tty=tty, term=term)

    @mitogen.service.expose(policy=mitogen.service.AllowParents())
    @mitogen.service.arg_spec({"job_id": str, "mux_id": int, "payload_key": str, "spec": dict})
    def module(self, job_id, mux_id, payload_key, spec):
        if spec.get("isolation") == "inline":
            raise ValueError("inline module runs are calls to the main thread (modules.run_module)")
        return modules.run_job(self.router, job_id, mux_id, payload_key, spec)
