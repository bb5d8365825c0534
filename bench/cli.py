"""`python -m bench`: options, the round-robin schedule, and the results."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from bench import report
from bench.config import DEFAULT_OUT, DEFAULT_WORK, BenchError, facts, load_ssh_env
from bench.modes import ALL_MODES, DEFAULT_MODES, build_modes
from bench.runner import Runner
from bench.topology import ALL_TOPOLOGIES, NetnsLab, cleanup_leftovers, loopback, needs_root
from bench.workloads import SMOKE_WORKLOADS, WORKLOADS


def _csv(choices):
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(',') if item.strip()]
        unknown = [i for i in items if i not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or '(empty)'}; choose from {','.join(choices)}")
        return items
    return parse


def parse_args(argv):
    p = argparse.ArgumentParser(prog='python -m bench', description=(
        'Benchmark ansible-svc (svc_linear) against vanilla ansible, ansible_mitogen (reference) '
        'and a debug-only floor. See bench/README.md.'))
    p.add_argument('--topologies', type=_csv(ALL_TOPOLOGIES), default=list(ALL_TOPOLOGIES),
                   help=f"comma-separated, default all: {','.join(ALL_TOPOLOGIES)} (10hosts* need root)")
    p.add_argument('--workloads', type=_csv(list(WORKLOADS)), default=list(WORKLOADS),
                   help=f"comma-separated, default all: {','.join(WORKLOADS)}")
    p.add_argument('--modes', type=_csv(ALL_MODES), default=list(DEFAULT_MODES),
                   help=f"comma-separated, from {','.join(ALL_MODES)}; default {','.join(DEFAULT_MODES)}")
    p.add_argument('--runs', type=int, default=3, help='measured runs per cell (default 3)')
    p.add_argument('--no-warmup', dest='warmup', action='store_false',
                   help='skip the warm-up run per mode/workload/topology')
    p.add_argument('--timeout', type=float, default=None,
                   help='seconds per ansible-playbook run before its process group is killed '
                        '(default 600, 60 with --smoke)')
    p.add_argument('--smoke', action='store_true',
                   help='tiny run: 1host, loop10 and tasks10, 1 run, no warm-up')
    p.add_argument('--out', type=Path, default=DEFAULT_OUT, help=f'results dir (default {DEFAULT_OUT})')
    p.add_argument('--merge', action='store_true',
                   help='keep the results not run this time (other topologies, other workloads) from the '
                        'existing latest.json in --out (run 10hosts later without losing 1host)')
    p.add_argument('--work', type=Path, default=DEFAULT_WORK,
                   help=f'generated playbooks, inputs and logs (default {DEFAULT_WORK})')
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error('--runs must be at least 1')
    if args.smoke:
        args.topologies, args.workloads, args.runs, args.warmup = ['1host'], list(SMOKE_WORKLOADS), 1, False
    args.timeout = args.timeout or (60.0 if args.smoke else 600.0)
    return args


def log(msg: str):
    print(msg, flush=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    catalogue = SMOKE_WORKLOADS if args.smoke else WORKLOADS
    started = time.monotonic()
    try:
        ssh_env = load_ssh_env()
        work = args.work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        modes = build_modes(args.modes, work)
        runner = Runner(work, ssh_env, args.timeout, log)
    except BenchError as exc:
        log(f'bench: {exc}')
        return 2

    command = 'python -m bench ' + ' '.join(argv)
    topologies = []
    for name in args.topologies:
        skipped = ''
        if name in needs_root([name]) and os.geteuid() != 0:
            skipped = 'needs root (network namespaces); run as root'
            log(f'bench: skipping {name}: {skipped}')
        topologies.append({'name': name, 'skipped': skipped, 'description': '', 'runs': args.runs,
                           'warmup': 1 if args.warmup else 0, 'command': command})
    meta = {
        'facts': facts(), 'command': command,
        'modes': args.modes, 'workloads': args.workloads, 'runs': args.runs,
        'warmup': 1 if args.warmup else 0, 'timeout': args.timeout, 'topologies': topologies,
        'workload_descriptions': {w: catalogue[w].description for w in args.workloads},
    }
    runs = []
    status = 0
    try:
        with contextlib.ExitStack() as stack:
            lab = None
            for topo_meta in topologies:
                if topo_meta['skipped']:
                    continue
                name = topo_meta['name']
                if name == '1host':
                    topo = loopback(ssh_env)
                else:
                    if lab is None:
                        log('bench: setting up 10 network namespaces with an sshd each')
                        lab = stack.enter_context(NetnsLab(ssh_env))
                    topo = lab.with_latency() if name == '10hosts-lat' else lab.direct()
                topo_meta['description'] = topo.description
                log(f'== {name}: {topo.description}')
                t0 = time.monotonic()
                for wname in args.workloads:
                    runs += run_cell(runner, topo, catalogue[wname], modes, args.runs, args.warmup)
                topo_meta['seconds'] = round(time.monotonic() - t0, 1)
                if name == '10hosts-lat':
                    lab.stop_proxy()
    except BenchError as exc:
        log(f'bench: {exc}')
        status = 2
    except KeyboardInterrupt:
        log('bench: interrupted; writing the results so far')
        status = 130
    finally:
        cleanup_leftovers()
        meta['total_seconds'] = round(time.monotonic() - started, 1)
        for topo_meta in topologies:
            topo_meta.update(date=meta['facts']['date'], git_commit=meta['facts']['git_commit'])
        if runs and args.merge:
            report.merge_previous(args.out, meta, runs)
        if runs:
            for note in report.write(args.out, meta, runs):
                log(f'bench: {note}')
            log(f'bench: results in {args.out}/latest.md (total {meta["total_seconds"]} s)')
    failed = [r for r in runs if not r.ok]
    if failed and not status:
        log(f'bench: {len(failed)} run(s) failed (shown as FAIL)')
        status = 1
    return status


def run_cell(runner: Runner, topo, workload, modes, runs: int, warmup: bool):
    """Warm-up once per mode, then `runs` rounds, mode order rotated each round."""
    results = []
    rounds = ([-1] if warmup else []) + list(range(runs))
    for rnd in rounds:
        shift = max(rnd, 0) % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            result = runner.run(topo, workload, mode, rnd)
            results.append(result)
            label = 'warm-up' if rnd < 0 else f'run {rnd + 1}/{runs}'
            outcome = 'ok' if result.ok else f'FAIL: {result.error}'
            log(f'  {topo.name:11} {workload.name:10} {mode.name:9} {label:9} '
                f'{result.wall:7.2f}s cpu {result.cpu:6.2f}s rss {result.maxrss_mib:5.0f} MiB  {outcome}')
    return results
