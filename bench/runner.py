"""One measured run: one ansible-playbook subprocess, timed, checked, cleaned up."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.config import REPO, TARGET_USER, ansible_playbook
from bench.modes import Mode, run_env
from bench.topology import Topology
from bench.workloads import Workload

RECAP_LINE = re.compile(
    r'^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+'
    r'unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)', re.M)


@dataclass
class RunResult:
    topology: str
    workload: str
    mode: str
    round: int                    # -1 for the warm-up
    ok: bool
    wall: float                   # seconds, from spawn to exit
    cpu: float                    # user+sys seconds of the ansible-playbook process tree
    maxrss_mib: float             # peak RSS of the largest process in that tree
    rc: int | None
    error: str = ''
    recap: dict = field(default_factory=dict)
    stalls: int | None = None     # Ansible run_command 1 s stalls (bench_stalls callback)
    # Peak RSS (VmHWM, sampled every SAMPLE_INTERVAL s) of: the ansible-playbook
    # process itself, our mux, and the largest long-lived target interpreter
    # (mitogen's, ours or the reference's) or, under vanilla, module process.
    controller_mib: float | None = None
    mux_mib: float | None = None
    target_mib: float | None = None

    @property
    def warmup(self) -> bool:
        return self.round < 0

    def to_json(self) -> dict:
        return {**asdict(self), 'warmup': self.warmup}


def parse_recap(stdout: str) -> dict:
    """host -> {ok, changed, unreachable, failed} from the PLAY RECAP section."""
    _, sep, tail = stdout.rpartition('PLAY RECAP')
    if not sep:
        return {}
    return {m['host']: {k: int(m[k]) for k in ('ok', 'changed', 'unreachable', 'failed')}
            for m in RECAP_LINE.finditer(tail)}


STALLS_LINE = re.compile(r'^BENCH run_command stalls (\d+)$', re.M)


def parse_stalls(stdout: str) -> int | None:
    m = STALLS_LINE.search(stdout)
    return int(m.group(1)) if m else None


def check(rc: int | None, recap: dict, hosts: list[str]) -> str:
    """'' if the run succeeded, else why not."""
    if rc is None:
        return 'timed out'
    if rc != 0:
        return f'rc={rc}'
    missing = [h for h in hosts if h not in recap]
    if missing:
        return f'no PLAY RECAP line for {", ".join(missing)}'
    bad = {h: s for h, s in recap.items() if s['failed'] or s['unreachable']}
    if bad:
        return 'failed/unreachable in recap: ' + ', '.join(
            f"{h} failed={s['failed']} unreachable={s['unreachable']}" for h, s in bad.items())
    return ''


#: How often the memory sampler reads /proc while a run goes on.
SAMPLE_INTERVAL = 0.2


class MemorySampler(threading.Thread):
    """Peak RSS of a run's controller, mux and target interpreters.

    Reads every process's ``VmHWM`` (its own peak RSS) from /proc while the
    run goes on; the targets of every topology are processes of this
    machine. A target interpreter is a mitogen child (its command line
    carries ``(mitogen:``) or, under vanilla, a module process
    (``AnsiballZ_``); task processes forked from an interpreter count as it.
    """

    def __init__(self, controller_pid: int):
        super().__init__(daemon=True)
        self.controller_pid = controller_pid
        self.peaks = {'controller': None, 'mux': None, 'target': None}
        self._stop = threading.Event()

    def run(self):
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.sample()

    def stop(self):
        self._stop.set()
        self.join()

    def sample(self):
        parents = _parents()
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                cmdline = open(f'/proc/{entry}/cmdline', 'rb').read()
                if int(entry) == self.controller_pid:
                    role = 'controller'
                elif b'ansible_svc.mux' in cmdline:
                    if not _descends_from(int(entry), self.controller_pid, parents):
                        continue  # another run's mux
                    role = 'mux'
                elif b'(mitogen:' in cmdline or b'AnsiballZ_' in cmdline:
                    role = 'target'
                else:
                    continue
                hwm = _vm_hwm_mib(f'/proc/{entry}/status')
            except OSError:
                continue
            if hwm is not None and (self.peaks[role] is None or hwm > self.peaks[role]):
                self.peaks[role] = hwm


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc."""
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as fp:
                    parents[int(entry)] = int(fp.read().rsplit(')', 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def _descends_from(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = set()
    while pid and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False


def _vm_hwm_mib(status_path: str) -> float | None:
    with open(status_path) as fp:
        for line in fp:
            if line.startswith('VmHWM:'):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def _wait4(pid: int, box: dict):
    _, status, usage = os.wait4(pid, 0)
    box.update(end=time.monotonic(), status=status, usage=usage)


class Runner:
    def __init__(self, work: Path, ssh_env: dict, timeout: float, log=print):
        self.work = work
        self.ssh_env = ssh_env
        self.timeout = timeout
        self.log = log
        self.logs = work / 'logs'
        self.logs.mkdir(parents=True, exist_ok=True)
        self._owner = self._target_ids()

    @staticmethod
    def _target_ids() -> tuple[int, int] | None:
        try:
            entry = pwd.getpwnam(TARGET_USER)
            return entry.pw_uid, entry.pw_gid
        except KeyError:
            return None

    def _make_run_dir(self, hosts: list[str]) -> Path:
        """Per-run target dir, one subdir per host; created outside the timing.

        The targets are this machine (loopback or namespaces sharing its
        filesystem), so the runner makes and removes it directly.
        """
        base = Path(tempfile.mkdtemp(prefix='svc-bench-run-', dir='/tmp'))
        base.chmod(0o755)
        for host in hosts:
            sub = base / host
            sub.mkdir()
            if os.geteuid() == 0 and self._owner:
                os.chown(sub, *self._owner)
            else:
                sub.chmod(0o777)
        return base

    def run(self, topo: Topology, workload: Workload, mode: Mode, round_: int) -> RunResult:
        hosts = [h.name for h in topo.hosts]
        inventory = self.work / f'inventory-{topo.name}.ini'
        inventory.write_text(topo.inventory(self.ssh_env))
        playbook = workload.playbook(self.work, floor=mode.floor)
        run_dir = self._make_run_dir(hosts)
        local_temp = self.work / 'ansible-local'
        cmd = [ansible_playbook(), '-i', str(inventory), '-e', f'bench_dir={run_dir}', str(playbook)]
        env = run_env(mode, topo.forks, local_temp)
        tag = f"{topo.name}-{workload.name}-{mode.name}-{'warmup' if round_ < 0 else round_}"
        out_path, err_path = self.logs / f'{tag}.out', self.logs / f'{tag}.err'
        try:
            with open(out_path, 'w') as out, open(err_path, 'w') as err:
                box: dict = {}
                start = time.monotonic()
                proc = subprocess.Popen(cmd, cwd=REPO, env=env,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        start_new_session=True)
                # wait4 gives this child's own rusage, including every
                # descendant it waited for: CPU and peak RSS per run.
                # (getrusage(RUSAGE_CHILDREN) would do for CPU deltas, but its
                # ru_maxrss is a maximum over the whole benchmark.)
                waiter = threading.Thread(target=_wait4, args=(proc.pid, box), daemon=True)
                waiter.start()
                sampler = MemorySampler(proc.pid)
                sampler.start()
                waiter.join(self.timeout)
                timed_out = waiter.is_alive()
                if timed_out:
                    kill_tree(proc.pid)
                    waiter.join()
                sampler.stop()
                proc.returncode = os.waitstatus_to_exitcode(box['status'])
            # Stragglers in the run's process group (none expected).
            with _suppress_gone():
                os.killpg(proc.pid, signal.SIGKILL)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        usage = box['usage']
        stdout = out_path.read_text(errors='replace')
        recap = parse_recap(stdout)
        rc = None if timed_out else proc.returncode
        error = check(rc, recap, hosts)
        if timed_out:
            error = f'timed out after {self.timeout:g}s (process group killed)'
        if error:
            error += f' (log: {out_path})'
        return RunResult(topo.name, workload.name, mode.name, round_, not error,
                         round(box['end'] - start, 3), round(usage.ru_utime + usage.ru_stime, 3),
                         round(usage.ru_maxrss / 1024, 1), rc, error, recap, parse_stalls(stdout),
                         sampler.peaks['controller'], sampler.peaks['mux'], sampler.peaks['target'])


def _descendants(root: int) -> list[int]:
    """Pids of every live descendant of `root`, from /proc (parents first)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                stat = open(f'/proc/{entry}/stat').read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(')') + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int):
    """SIGKILL a run on timeout: its process group, and every descendant's
    group too (ansible's workers and ansible-svc's helpers may start their
    own sessions, so the first group alone would leave them running)."""
    victims = _descendants(pid)
    own_group = os.getpgrp()
    for target in [pid, *victims]:
        with _suppress_gone():
            group = os.getpgid(target)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
        with _suppress_gone():
            os.kill(target, signal.SIGKILL)


class _suppress_gone:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        return exc_type in (ProcessLookupError, PermissionError)
