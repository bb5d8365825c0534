"""Target-side halves of test_target_parts.py: functions that run inside a
local mitogen child (a stand-in target interpreter), so that what they
import and fork never touches the test process. No pytest here: the child
imports this module from the test process through mitogen."""
import json
import os
import signal
import sys
import threading
import time

import mitogen.core


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %r' % (predicate,))
        time.sleep(0.01)


@mitogen.core.takes_router
def store_and_preload(first, second, router=None):
    """Two synthetic payloads through one PayloadStore."""
    from ansible_svc.target import payloads

    store = payloads.PayloadStore()
    p1 = store.add(router, 'k1', bytes(first))
    found = {'cold': p1.warm, 'path_exists': os.path.isfile(p1.path),
             'dir_has_pid': ('-%d-' % os.getpid()) in os.path.basename(store.directory)}
    store.warm(p1)
    extra = sys.modules.get('ansible.module_utils.extra')
    found.update(warm=p1.warm, extra_value=getattr(extra, 'VALUE', None),
                 extra_file=getattr(extra, '__file__', ''), payload_path=p1.path,
                 module_imported='ansible.modules.thing' in sys.modules,
                 preloaded=sorted(store.preloaded))
    p2 = store.add(router, 'k2', bytes(second))
    found['stale_in_second'] = store.stale_in(p2)
    found['stale_in_first'] = store.stale_in(p1)
    store.warm(p2)
    found['extra_after_second'] = sys.modules['ansible.module_utils.extra'].VALUE
    # Only the interpreter that made the directory removes it.
    pid = os.fork()
    if pid == 0:
        store.remove_directory()
        os._exit(0)
    os.waitpid(pid, 0)
    found['kept_by_child'] = os.path.isdir(store.directory)
    store.remove_directory()
    found['removed_by_owner'] = not os.path.exists(store.directory)
    return found


def _state_with(router, zip_data, key):
    from ansible_svc.target import modules
    state = modules.Interpreter()
    return state, state.store.add(router, key, bytes(zip_data))


def _result(rc_out_err):
    rc, out, err = rc_out_err
    return {'rc': rc, 'out': json.loads(out.decode()) if out.strip() else None, 'err': err.decode()}


@mitogen.core.takes_router
def warm_run(zip_data, key, spec, router=None):
    """A task of a warm payload: its module_utils are imported in the
    interpreter, its module code runs only in the task process."""
    from ansible_svc.target import taskproc
    state, payload = _state_with(router, zip_data, key)
    state.store.warm(payload)
    result = _result(taskproc.run(state, payload, spec))
    result['preloaded'] = 'ansible.module_utils.basic' in state.store.preloaded
    result['module_in_interpreter'] = sorted(n for n in sys.modules if n.startswith('ansible.modules'))
    return result


@mitogen.core.takes_router
def spare_runs_next(ppid_zip, ppid_key, ppid_spec, ping_zip, ping_key, ping_spec, router=None):
    """The spare runs the next task of a payload it knows; a task of a new
    payload retires it (and reaps it)."""
    from ansible_svc.target import taskproc
    state, payload = _state_with(router, ppid_zip, ppid_key)
    state.store.warm(payload)
    taskproc.fork_spare(state)
    spare = state.spare.pid
    ran = _result(taskproc.run(state, payload, ppid_spec))
    taskproc.fork_spare(state)
    second_spare = state.spare.pid
    ping = state.store.add(router, ping_key, bytes(ping_zip))
    pong = _result(taskproc.run(state, ping, ping_spec))
    try:
        os.waitpid(second_spare, os.WNOHANG)
        reaped = False
    except ChildProcessError:
        reaped = True
    return {'spare': spare, 'ran': ran, 'pong': pong, 'retired_reaped': reaped, 'spare_now': state.spare,
            'running': dict(state.running)}


@mitogen.core.takes_router
def killed_run(zip_data, key, spec, router=None):
    """A task process killed by a signal reports as vanilla's shell would."""
    from ansible_svc.target import taskproc
    state, payload = _state_with(router, zip_data, key)
    state.store.warm(payload)
    box = []
    thread = threading.Thread(target=lambda: box.append(taskproc.run(state, payload, spec, 'job-1')))
    thread.start()
    _wait(lambda: state.running)
    (pid, job), = state.running.items()
    os.killpg(pid, signal.SIGKILL)
    thread.join(30)
    rc, out, err = box[0]
    return {'job': job, 'rc': rc, 'err': err.decode(), 'running_after': dict(state.running)}
