"""Per-task cost of the two task isolation modes, inside one real target
interpreter: ``python -m bench.isolation_cost [--runs N]``.

The playbook-level comparison is ``make bench BENCH_ARGS='--modes
svc,svc-inline'``; this one takes Ansible and ssh out of the picture and
times only what differs: running a module in a child forked for the task
(``fork``), in the child the interpreter forked ahead of it while idle
(``spare``, what ``fork`` isolation does after its first task), or in the
interpreter itself (``inline``). A local interpreter is started with
mitogen, given the AnsiballZ payload Ansible builds for each module, and runs
it `--runs` times in each mode after three warm-up runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import mitogen.core
import mitogen.utils

#: The target's Python: the system one, as on a real target.
TARGET_PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable

MODULES = (
    ('ansible.builtin.file', {'path': '/tmp', 'state': 'directory'}),
    ('ansible.builtin.stat', {'path': '/etc/hostname'}),
    ('ansible.builtin.command', {'_raw_params': 'true'}),
)


def build_payload(name, args):
    import ansible.plugins.loader as loader
    from ansible.executor.module_common import modify_module
    from ansible.template import Templar

    from ansible_svc.controller import ansiballz

    loader.init_plugin_loader()
    built = modify_module(module_name=name, module_path=loader.module_loader.find_plugin(name), module_args=args,
                          templar=Templar(loader=None), task_vars={'ansible_python_interpreter': TARGET_PYTHON})
    return ansiballz.parse(built.b_module_data)


@mitogen.core.takes_router
def time_modes(zip_data, key, spec, runs, router=None):
    """On the target: median milliseconds per run, per mode."""
    from ansible_svc.target import inline, modules, taskproc

    state = modules.Interpreter()
    payload = state.store.add(router, key, bytes(zip_data))
    state.store.warm(payload)
    result = {}
    for mode, prepare, run in (
        ('fork', lambda: None, lambda: taskproc.run(state, payload, spec)),
        ('spare', lambda: taskproc.fork_spare(state), lambda: taskproc.run(state, payload, spec)),
        ('inline', lambda: None, lambda: inline.run_inline(state.store, payload, spec)),
    ):
        for _ in range(3):
            prepare()
            rc, out, err = run()
            if rc != 0:
                raise RuntimeError('module failed (rc %s): %r %r' % (rc, out, err))
        times = []
        for _ in range(runs):
            prepare()  # not timed: the interpreter does it while idle
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1000)
        result[mode] = statistics.median(times)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=40)
    args = parser.parse_args(argv)

    def measure(router):
        print('| module | fork (ms) | spare (ms) | inline (ms) | spare costs (ms) |')
        print('|---|---|---|---|---|')
        for name, module_args in MODULES:
            payload = build_payload(name, module_args)
            spec = {'params': payload.params, 'profile': payload.profile, 'module_fqn': payload.module_fqn,
                    'extensions': payload.extensions, 'rlimit_nofile': 0, 'env': {}, 'cwd': None}
            context = router.local(python_path=[TARGET_PYTHON])
            got = context.call(time_modes, mitogen.core.Blob(payload.zip_data), payload.key, spec, args.runs)
            context.shutdown(wait=True)
            print('| %s | %.2f | %.2f | %.2f | %.2f |' % (name, got['fork'], got['spare'], got['inline'], got['spare'] - got['inline']))

    mitogen.utils.run_with_router(measure)


if __name__ == '__main__':
    main()
