"""A loopback TCP proxy that injects network faults between a client and a local server.

Point an SDK at the proxy instead of the server (TLS passes through untouched) and call:

- ``blackhole()``: every connection open now stops forwarding in both directions but keeps
  its sockets open: no FIN, no RST, like Wi-Fi roaming, NAT rebinding or a sleeping laptop.
  Connections made afterwards are forwarded normally, so a client that notices can recover.
- ``reset()``: every open connection is cut with a RST.
- ``partition()``: a lasting outage of this path only: open connections are blackholed and new
  ones are accepted and then hear nothing, until ``heal()`` (which cuts the dark connections
  with a RST, so clients reconnect at once).

It listens on 127.0.0.1 only and is meant for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pipe:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    held: asyncio.Event = field(default_factory=asyncio.Event)  # set: stop forwarding


class FaultProxy:
    """``async with FaultProxy(port) as proxy``: forwards 127.0.0.1:proxy.port to ``port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        """Connections accepted so far."""
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._partitioned = False
        self._dark: set[asyncio.StreamWriter] = set()

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset()  # blackholed pairs included
        tasks = [t for p in self._pipes for t in p.tasks] + list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pipes.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def open_connections(self) -> int:
        return sum(1 for p in self._pipes if not p.held.is_set())

    def blackhole(self) -> int:
        """Stop forwarding on every open connection (sockets stay open); returns how many."""
        count = 0
        for pipe in self._pipes:
            if not pipe.held.is_set():
                pipe.held.set()
                count += 1
        return count

    def reset(self) -> None:
        """Cut every open connection with a RST."""
        for pipe in list(self._pipes):
            for writer in (pipe.client, pipe.upstream):
                _abort(writer)
        for writer in list(self._dark):
            _abort(writer)

    def partition(self) -> None:
        """Cut this path off until ``heal()``: nothing gets through, nothing is refused."""
        self._partitioned = True
        self.blackhole()

    def heal(self) -> None:
        """End ``partition()``: the dark connections are cut (RST), new ones forward again."""
        self._partitioned = False
        self.reset()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._partitioned:  # accepted, then silence: the handshake is all that gets through
            self._dark.add(writer)
            try:
                with contextlib.suppress(ConnectionError, OSError):
                    while await reader.read(65536):
                        pass
            finally:
                self._dark.discard(writer)
                writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            logger.debug("fault proxy: upstream refused: %s", exc)
            _abort(writer)
            return
        pipe = _Pipe(writer, up_writer)
        self._pipes.add(pipe)
        loop = asyncio.get_running_loop()
        pipe.tasks = [
            loop.create_task(self._pump(reader, up_writer, pipe)),
            loop.create_task(self._pump(up_reader, writer, pipe)),
        ]
        try:
            await asyncio.gather(*pipe.tasks, return_exceptions=True)
        finally:
            if not pipe.held.is_set():  # a blackholed pair stays open until the proxy closes
                self._pipes.discard(pipe)
                for w in (writer, up_writer):
                    w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipe: _Pipe
    ) -> None:
        try:
            while not pipe.held.is_set():
                data = await reader.read(65536)
                if not data:
                    break
                if pipe.held.is_set():
                    break  # swallowed: the path went dark
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not pipe.held.is_set():
                with contextlib.suppress(Exception):
                    writer.write_eof()
        if pipe.held.is_set():
            # Keep reading (and dropping) so the sender's buffers do not fill up and stall it
            # before it notices: a blackhole swallows, it does not push back.
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(65536):
                    pass


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.transport.abort()
