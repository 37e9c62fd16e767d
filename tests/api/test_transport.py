"""api/transport.py: what one loop step writes leaves in one send, in order, on a real socket."""

from __future__ import annotations

import asyncio
import socket

from api.transport import FLUSH_AT, CoalescingTransport


def test_writes_of_one_loop_step_leave_together_in_order_and_close_flushes() -> None:
    async def run() -> tuple[list[bytes], bytes]:
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        _reader, writer = await asyncio.open_connection(sock=ours)
        t = CoalescingTransport(writer.transport, loop)  # type: ignore[arg-type]
        seen = []
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")  # a response's head...
        t.write(b"{}")  # ...and its body, in the same step
        try:
            seen.append(theirs.recv(1 << 16))
        except BlockingIOError:
            seen.append(b"")  # nothing has left yet
        await asyncio.sleep(0.05)
        seen.append(theirs.recv(1 << 16))  # both, in one read
        t.write(b"x" * FLUSH_AT)  # past the threshold: at once
        big = b""
        while len(big) < FLUSH_AT:
            await asyncio.sleep(0.01)
            big += theirs.recv(1 << 20)
        t.write(b"last")
        t.close()  # flushes before closing
        await asyncio.sleep(0.05)
        tail = theirs.recv(1 << 16)
        theirs.close()
        return seen, big + tail

    seen, rest = asyncio.run(run())
    assert seen == [b"", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert rest == b"x" * FLUSH_AT + b"last"
