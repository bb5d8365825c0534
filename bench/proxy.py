"""A user-space TCP proxy that delays every chunk, run as its own process.

    python -m bench.proxy --delay 0.005 127.0.0.1:3300=10.231.0.2:22 ...

Each chunk read in either direction is forwarded `delay` seconds after it
arrived, in order; delays overlap (throughput is not capped), so a 5 ms
delay each way adds 10 ms to every round trip. The kernel has no tc netem
here, hence this proxy. It prints "ready" once every listener is up.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float):
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(1 << 16)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def _handle(client_r, client_w, target: tuple[str, int], delay: float):
    try:
        server_r, server_w = await asyncio.open_connection(*target)
    except OSError:
        client_w.close()
        return
    for w in (client_w, server_w):
        sock = w.get_extra_info('socket')
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(_forward(client_r, server_w, delay), _forward(server_r, client_w, delay))
    except asyncio.CancelledError:
        pass  # the proxy is shutting down with this connection still open
    finally:
        for w in (client_w, server_w):
            w.close()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(':')
    return host, int(port)


async def serve(routes: list[tuple[tuple[str, int], tuple[str, int]]], delay: float):
    servers = []
    for listen, target in routes:
        servers.append(await asyncio.start_server(
            lambda r, w, t=target: _handle(r, w, t, delay), *listen, reuse_address=True))
    print('ready', flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--delay', type=float, default=0.005, help='seconds added each way (default 0.005)')
    parser.add_argument('routes', nargs='+', metavar='LISTEN=TARGET', help='e.g. 127.0.0.1:3300=10.231.0.2:22')
    args = parser.parse_args(argv)
    routes = []
    for route in args.routes:
        listen, _, target = route.partition('=')
        routes.append((_addr(listen), _addr(target)))
    asyncio.run(serve(routes, args.delay))
    return 0


if __name__ == '__main__':
    sys.exit(main())
