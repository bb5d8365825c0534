"""Where the playbooks run: the hosts, their inventory, and the set-up behind them.

* ``1host``: the test env's sshd on 127.0.0.1:2222 (loopback).
* ``10hosts``: 10 network namespaces ``svcb0..svcb9``, each joined to the
  root namespace by a veth pair (10.231.N.1/30 root side, 10.231.N.2/30
  namespace side) and running its own sshd on 10.231.N.2:22. Namespaces
  share the filesystem, so the test env's users, keys and host key serve.
* ``10hosts-lat``: the same namespaces, reached through ``bench.proxy`` on
  127.0.0.1:(3300+N), which adds 5 ms each way (10 ms round trip).

The suite creates and removes everything itself; on start it also removes
leftovers of a crashed run (namespaces svcb*, their sshds, the proxy).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.config import REPO, STATE, TARGET_USER, BenchError

ALL_TOPOLOGIES = ('1host', '10hosts', '10hosts-lat')
NS_PREFIX = 'svcb'
NS_COUNT = 10
PROXY_BASE_PORT = 3300
PROXY_DELAY = 0.005
#: Root-only runtime state (pidfiles, sshd configs): fixed, so a later run
#: finds a crashed run's leftovers whatever --work it was given.
RUNTIME = Path('/run/svc-bench')


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int


@dataclass(frozen=True)
class Topology:
    name: str
    hosts: tuple[Host, ...]
    known_hosts: Path
    description: str

    @property
    def forks(self) -> int:
        return max(len(self.hosts), 1)

    def inventory(self, ssh_env: dict) -> str:
        common = (f"ansible_user={TARGET_USER} ansible_ssh_private_key_file={ssh_env['key']} "
                  f"ansible_python_interpreter={ssh_env.get('python', '/usr/bin/python3')} "
                  f"ansible_ssh_common_args='-o UserKnownHostsFile={self.known_hosts}'")
        lines = ['[all]']
        lines += [f'{h.name} ansible_host={h.address} ansible_port={h.port} {common}' for h in self.hosts]
        return '\n'.join(lines) + '\n'


def loopback(ssh_env: dict) -> Topology:
    return Topology('1host', (Host('target', ssh_env['host'], int(ssh_env['port'])),),
                    Path(ssh_env['known_hosts']),
                    f"1 host: the test sshd on {ssh_env['host']}:{ssh_env['port']} (loopback)")


def needs_root(names) -> list[str]:
    return [n for n in names if n != '1host']


# --- helpers -----------------------------------------------------------------

def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(['ip', *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode:
        raise BenchError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def _wait_port(host: str, port: int, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f'{what} does not accept connections on {host}:{port}')
            time.sleep(0.05)


def _kill_pidfile(pidfile: Path, must_contain: str):
    """Kill the process in `pidfile` if it is still the one we started."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode()
    except (OSError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    if must_contain in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    pidfile.unlink(missing_ok=True)


def _ns_name(n: int) -> str:
    return f'{NS_PREFIX}{n}'


def _ns_addr(n: int) -> str:
    return f'10.231.{n}.2'


# --- the namespaces lab ------------------------------------------------------

class NetnsLab:
    """10 namespaces with a veth pair and an sshd each; a latency proxy on demand.

    Use as a context manager: set up on enter, everything removed on exit.
    """

    def __init__(self, ssh_env: dict, count: int = NS_COUNT):
        self.ssh_env = ssh_env
        self.count = count
        self.known_hosts = RUNTIME / 'known_hosts'
        self.proxy: subprocess.Popen | None = None

    # -- lifecycle
    def __enter__(self) -> NetnsLab:
        if os.geteuid() != 0:
            raise BenchError('network namespaces need root')
        cleanup_leftovers()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.stop_proxy()
        cleanup_leftovers()

    # -- set-up
    def _setup(self):
        RUNTIME.mkdir(mode=0o700, parents=True, exist_ok=True)
        used = _ip('-o', '-4', 'addr', 'show', 'to', '10.231.0.0/16').stdout.strip()
        if used:
            raise BenchError(f'10.231.0.0/16 is already in use in the root namespace:\n{used}')
        base_cfg = [line for line in (STATE / 'sshd_config').read_text().splitlines()
                    if line.split(' ', 1)[0] not in ('Port', 'ListenAddress', 'PidFile')]
        host_pub = (STATE / 'ssh_host_ed25519_key.pub').read_text().split()
        key = f'{host_pub[0]} {host_pub[1]}'
        known = []
        for n in range(self.count):
            ns, host_if, ns_if = _ns_name(n), f'{_ns_name(n)}h', f'{_ns_name(n)}n'
            _ip('netns', 'add', ns)
            _ip('link', 'add', host_if, 'type', 'veth', 'peer', 'name', ns_if)
            _ip('link', 'set', ns_if, 'netns', ns)
            _ip('addr', 'add', f'10.231.{n}.1/30', 'dev', host_if)
            _ip('link', 'set', host_if, 'up')
            _ip('-n', ns, 'addr', 'add', f'{_ns_addr(n)}/30', 'dev', ns_if)
            _ip('-n', ns, 'link', 'set', ns_if, 'up')
            _ip('-n', ns, 'link', 'set', 'lo', 'up')
            cfg = RUNTIME / f'sshd-{n}.conf'
            cfg.write_text('\n'.join([f'# Generated by bench/topology.py for namespace {ns}', *base_cfg,
                                      'Port 22', f'ListenAddress {_ns_addr(n)}',
                                      f"PidFile {RUNTIME / f'sshd-{n}.pid'}", '']))
            proc = subprocess.run(['ip', 'netns', 'exec', ns, '/usr/sbin/sshd', '-f', str(cfg),
                                   '-E', str(RUNTIME / f'sshd-{n}.log')],
                                  capture_output=True, text=True, timeout=30)
            if proc.returncode:
                raise BenchError(f'sshd in {ns} failed to start: {proc.stderr.strip()}')
            known.append(f'{_ns_addr(n)},[127.0.0.1]:{PROXY_BASE_PORT + n} {key}')
        self.known_hosts.write_text('\n'.join(known) + '\n')
        for n in range(self.count):
            _wait_port(_ns_addr(n), 22, 10, f'sshd in {_ns_name(n)}')

    # -- topologies
    def direct(self) -> Topology:
        hosts = tuple(Host(_ns_name(n), _ns_addr(n), 22) for n in range(self.count))
        return Topology('10hosts', hosts, self.known_hosts,
                        f'{self.count} hosts: one sshd per network namespace, over veth pairs')

    def with_latency(self) -> Topology:
        self.start_proxy()
        hosts = tuple(Host(_ns_name(n), '127.0.0.1', PROXY_BASE_PORT + n) for n in range(self.count))
        return Topology('10hosts-lat', hosts, self.known_hosts,
                        f'{self.count} hosts as in 10hosts, through a user-space proxy adding '
                        f'{PROXY_DELAY * 1000:g} ms each way ({PROXY_DELAY * 2000:g} ms RTT)')

    # -- the proxy
    def start_proxy(self):
        if self.proxy and self.proxy.poll() is None:
            return
        routes = [f'127.0.0.1:{PROXY_BASE_PORT + n}={_ns_addr(n)}:22' for n in range(self.count)]
        self.proxy = subprocess.Popen(
            [sys.executable, '-m', 'bench.proxy', '--delay', str(PROXY_DELAY), *routes],
            cwd=REPO, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True)
        (RUNTIME / 'proxy.pid').write_text(f'{self.proxy.pid}\n')
        line = self.proxy.stdout.readline().strip()
        if line != 'ready':
            self.stop_proxy()
            raise BenchError('the latency proxy did not start (see its stderr above)')
        for n in range(self.count):
            _wait_port('127.0.0.1', PROXY_BASE_PORT + n, 10, 'latency proxy')

    def stop_proxy(self):
        if self.proxy is None:
            return
        if self.proxy.poll() is None:
            self.proxy.terminate()
            try:
                self.proxy.wait(5)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()
        self.proxy.stdout.close()
        self.proxy = None
        (RUNTIME / 'proxy.pid').unlink(missing_ok=True)


def cleanup_leftovers():
    """Remove namespaces svcb*, their sshds and veths, and the proxy, from any run."""
    if os.geteuid() != 0:
        return
    _kill_pidfile(RUNTIME / 'proxy.pid', 'bench.proxy')
    listed = _ip('netns', 'list', check=False).stdout.split('\n')
    names = [line.split()[0] for line in listed if line.strip().startswith(NS_PREFIX)]
    for ns in names:
        n = ns[len(NS_PREFIX):]
        _kill_pidfile(RUNTIME / f'sshd-{n}.pid', 'sshd')
        # Anything else still inside the namespace (sshd children, sessions).
        for pid in _ip('netns', 'pids', ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        _ip('netns', 'del', ns, check=False)
    # A root-side veth end outlives its namespace only if the peer never moved.
    links = _ip('-o', 'link', 'show', check=False).stdout.splitlines()
    for line in links:
        parts = line.split(':')
        if len(parts) > 1:
            name = parts[1].strip().split('@')[0]
            if name.startswith(NS_PREFIX) and name[len(NS_PREFIX):-1].isdigit():
                _ip('link', 'del', name, check=False)
    for leftover in RUNTIME.glob('sshd-*') if RUNTIME.is_dir() else ():
        leftover.unlink(missing_ok=True)
