"""uvicorn's HTTP protocol with one change: what a response writes within one step of the event
loop leaves in one send.

uvicorn writes a response's head (status line and headers) as soon as the app sends
`http.response.start`, and its body on `http.response.body`: two `send` calls, two TCP segments
(the socket has TCP_NODELAY), two wake-ups of the client, for every response. Here the transport
keeps what is written and hands it to the socket at the end of the current loop step (or at once
past 64 KB, or before closing), so a head and a body sent together, as every non-streaming
response is, go out as one. Order is kept; a streamed body's chunks are delayed by one loop step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_AT = 64 * 1024


class CoalescingTransport:
    """A transport whose writes are joined until the end of the loop step."""

    __slots__ = ("_loop", "_pending", "_scheduled", "_size", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport, self._loop = transport, loop
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the socket transport's
        return getattr(self.transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
