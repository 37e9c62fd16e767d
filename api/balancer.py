"""`cairn serve --workers N`: one listening process hands each connection to the worker process
with the fewest open ones (`Balancer`); each worker is a uvicorn server that listens on nothing and
serves the connections handed to it (`HandedConnections`)."""

from __future__ import annotations

import asyncio
import gc
import selectors
import socket
from typing import Any

import uvicorn


class Balancer:
    """Accepts on the port and passes each connection (its file descriptor, over a Unix socket) to
    the worker with the fewest open connections, round-robin among equals.

    The kernel's own spreading (SO_REUSEPORT hashes each connection to a worker) is uneven for a few
    dozen long-lived keep-alive connections: 19 against 13 is common, and the busier worker's
    clients wait half again as long. Accepting starts when every worker is ready, so early clients
    do not all land on the first worker up. Workers report each closed connection with one byte.
    """

    def __init__(self, listener: Any, channels: list[Any], procs: list[Any]) -> None:
        self.listener, self.channels, self.procs = listener, channels, procs
        self.open = [0] * len(channels)
        self.ready = [False] * len(channels)
        self.next = 0
        self.stopping = False

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def run(self) -> None:
        self.listener.setblocking(False)
        with selectors.DefaultSelector() as sel:
            for i, ch in enumerate(self.channels):
                sel.register(ch, selectors.EVENT_READ, i)
            listening = False
            while not self.stopping:
                for key, _ in sel.select(0.2):
                    if key.data is None:
                        self._accept()
                        continue
                    self._heard(key.data)
                    if all(self.ready) and not listening:
                        sel.register(self.listener, selectors.EVENT_READ, None)
                        listening = True
                if not all(p.is_alive() for p in self.procs):
                    return

    def _heard(self, i: int) -> None:
        data = self.channels[i].recv(4096)  # empty when the worker is gone; run() notices its exit
        self.open[i] -= data.count(b"x")
        if b"r" in data:
            self.ready[i] = True

    def _accept(self) -> None:
        for _ in range(64):
            try:
                conn, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            n = len(self.channels)
            i = min(((self.next + k) % n for k in range(n)), key=lambda j: self.open[j])
            self.next = (i + 1) % n
            with conn:
                socket.send_fds(self.channels[i], [b"c"], [conn.fileno()])
            self.open[i] += 1


def settle() -> None:
    """Move everything the server holds for its lifetime (modules, schemas, the app) out of the
    garbage collector's sight, so full collections walk only what requests create: a full pass over
    them paused a worker for about 45 ms, which every request queued on it waited out."""
    gc.collect()
    gc.freeze()


class HandedConnections(uvicorn.Server):
    """A uvicorn server that listens on nothing: its connections arrive from the balancer over
    `channel`, and it reports each closed one back with one byte."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        config, channel = self.config, self.channel
        tasks: set[asyncio.Task[Any]] = set()  # strong references until each accept is done

        def protocol() -> asyncio.Protocol:
            proto = config.http_protocol_class(config=config, server_state=self.server_state, app_state=self.lifespan.state)  # type: ignore[call-arg]
            lost = proto.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                lost(exc)
                try:
                    channel.send(b"x")
                except OSError:
                    pass  # the balancer is gone: we are shutting down

            proto.connection_lost = connection_lost  # type: ignore[method-assign]
            return proto

        def receive() -> None:
            try:
                data, fds, _flags, _addr = socket.recv_fds(channel, 256, 256)
            except (BlockingIOError, InterruptedError):
                return
            if not data:  # the balancer exited: finish what is open and stop
                loop.remove_reader(channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                sock = socket.socket(fileno=fd)
                sock.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(protocol, sock))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        channel.setblocking(False)
        loop.add_reader(channel.fileno(), receive)
        channel.send(b"r")
