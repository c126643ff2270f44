"""Workers forked from a process that has already imported everything.

Starting ``python -m vision_agents.server.worker`` costs about 1.3 s of CPU, nearly all of it
imports (aiortc, av, numpy, aiohttp, the app's module), and a worker serves one session: on
a small machine whose sessions come and go quickly, the pool cannot start workers as fast as
sessions take them, and a request waits for one (``startup["worker"]`` of a session). The
fork server is started once per node: it imports the worker module and the app's module,
then forks a worker per request in a few milliseconds; the child shares the parent's
imported code copy-on-write.

Only imports happen before the fork: no event loop, no threads of ours, no ``prewarm()``
(the app's hook can start threads or open sessions that must not be shared); each worker
runs ``prewarm()`` itself as before.

The protocol on the control socket (a Unix socketpair, the server's end and ours):
``fork\\n`` carrying two file descriptors (the worker's stdin and its reply pipe) is
answered ``pid N\\n``; ``exit N CODE\\n`` is sent when a worker exits. ``ready\\n`` is sent
once the imports are done, ``unusable MESSAGE\\n`` if they failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import signal
import socket
import sys
from typing import Any

logger = logging.getLogger(__name__)


# -- the fork server process ------------------------------------------------------------------


def _serve(control: socket.socket, factory_spec: str, call_host: str) -> int:
    try:
        from vision_agents.server import worker
        from vision_agents.server.request import load_factory

        load_factory(factory_spec)  # imports the app's module (and what it imports)
    except Exception as exc:  # the same failure a worker would report
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        control.sendall(f"unusable {first}\n".encode())
        return 1
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    control.sendall(b"ready\n")
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                message, fds, _flags, _addr = socket.recv_fds(control, 64, 2)
                if not message:
                    return 0  # the server is gone: its workers stop when their pipes close
                if len(fds) != 2:
                    for fd in fds:
                        os.close(fd)
                    continue
                pid = os.fork()
                if pid == 0:
                    os._exit(_child(control, wake_r, wake_w, fds, factory_spec, call_host, worker))
                for fd in fds:
                    os.close(fd)
                control.sendall(f"pid {pid}\n".encode())
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                _reap(control)


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        control.sendall(f"exit {pid} {code}\n".encode())


def _child(
    control: socket.socket,
    wake_r: int,
    wake_w: int,
    fds: list[int],
    factory_spec: str,
    call_host: str,
    worker: Any,
) -> int:
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.close()
        os.close(wake_r)
        os.close(wake_w)
        os.setsid()  # as a spawned worker: Ctrl-C in a terminal reaches the server only
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        for fd in fds:
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # the worker reads fd 0 through it
        code: int = worker.main([factory_spec, call_host])
        return code
    except BaseException:  # never return into the fork server's loop
        logging.getLogger(__name__).exception("a forked worker failed")
        return 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(
            "usage: python -m vision_agents.server.forkserver CONTROL_FD MODULE:FACTORY CALL_HOST",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as a worker: the server decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(args[0]))
    with control:
        return _serve(control, args[1], args[2])


# -- the server's side ------------------------------------------------------------------------


class ForkServerGone(Exception):
    """The fork server exited or never became ready."""


class ForkedProcess:
    """A worker forked by the fork server, with the part of ``asyncio.subprocess.Process``
    the pool uses: ``pid``, ``returncode``, ``stdin``, ``stdout``, ``wait()``, ``kill()``."""

    def __init__(
        self,
        pid: int,
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        exited: asyncio.Future[int],
    ) -> None:
        self.pid = pid
        self.stdin: asyncio.StreamWriter | None = stdin
        self.stdout: asyncio.StreamReader | None = stdout
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        if self._exited.done():
            raise ProcessLookupError(self.pid)
        os.kill(self.pid, signal.SIGKILL)


def _watch_exit(loop: asyncio.AbstractEventLoop, pid: int, future: asyncio.Future[int]) -> None:
    """Resolve ``future`` with -1 (code unknown) once process ``pid`` has ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        future.set_result(-1)
        return

    def ended() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not future.done():
            future.set_result(-1)

    loop.add_reader(fd, ended)


class ForkServer:
    """Starts the fork server for one app and asks it for workers."""

    def __init__(self, factory: str, call_host: str, line_limit: int) -> None:
        self.factory = factory
        self.call_host = call_host
        self.line_limit = line_limit
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sock: socket.socket | None = None
        self._pids: asyncio.Queue[int | None] = asyncio.Queue()
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._lock = asyncio.Lock()
        self._listen: asyncio.Task[None] | None = None
        self.gone: str | None = None

    async def start(self, timeout_s: float) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "vision_agents.server.forkserver",
                str(theirs.fileno()),
                self.factory,
                self.call_host,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env=os.environ.copy(),
            )
        finally:
            theirs.close()
        self._sock = ours
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        try:
            async with asyncio.timeout(timeout_s):
                line = (await self._reader.readline()).decode().strip()
        except TimeoutError:
            await self.close()
            raise ForkServerGone(f"the fork server was not ready within {timeout_s:g} s") from None
        if line != "ready":
            await self.close()
            raise ForkServerGone(line.removeprefix("unusable ") or "the fork server exited")
        self._listen = asyncio.ensure_future(self._read())

    async def spawn(self) -> ForkedProcess:
        if self.gone is not None or self._sock is None:
            raise ForkServerGone(self.gone or "not started")
        loop = asyncio.get_running_loop()
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            async with self._lock:  # one fork at a time: replies come in request order
                try:
                    socket.send_fds(self._sock, [b"fork\n"], [in_r, out_w])
                except OSError as exc:  # its end closed (or, never seen, a full buffer)
                    self.gone = self.gone or f"the fork server is unreachable: {exc}"
                    raise ForkServerGone(self.gone) from exc
                pid = await self._pids.get()
        finally:
            os.close(in_r)
            os.close(out_w)
        if pid is None:
            os.close(in_w)
            os.close(out_r)
            raise ForkServerGone(self.gone or "the fork server exited")
        exited = self._exits.setdefault(pid, loop.create_future())
        reader = asyncio.StreamReader(limit=self.line_limit)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(out_r, "rb", buffering=0)
        )
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(in_w, "wb", buffering=0)
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        return ForkedProcess(pid, writer, reader, exited)

    async def _read(self) -> None:
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        try:
            while line := await self._reader.readline():
                kind, _, rest = line.decode().strip().partition(" ")
                if kind == "pid":
                    self._pids.put_nowait(int(rest))
                elif kind == "exit":
                    pid_text, _, code = rest.partition(" ")
                    future = self._exits.setdefault(int(pid_text), loop.create_future())
                    if not future.done():
                        future.set_result(int(code))
        finally:
            self.gone = self.gone or "the fork server exited"
            self._pids.put_nowait(None)
            for pid, future in self._exits.items():
                if not future.done():
                    # Its workers live on (adopted by init); nobody reports their exit codes
                    # now, so their end is watched directly.
                    _watch_exit(loop, pid, future)

    async def close(self) -> None:
        self.gone = self.gone or "closed"
        if self._writer is not None:
            self._writer.close()
        if self._listen is not None:
            self._listen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen
        if self.process is not None:
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
