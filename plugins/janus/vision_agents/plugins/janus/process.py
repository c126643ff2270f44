"""`JanusProcess`: run Debian's `janus` with the minimal config shipped here (tests, demos).

The config (``config/*.jcfg``) loads only the VideoRoom plugin and the WebSocket transport,
turns on signed-token auth and lets only holders of ``admin_key`` create rooms. Placeholders
(``$name``) are filled in per run and the files written to a folder of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import secrets
import shutil
import signal
import socket
import string
import tempfile
import time
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def render_config(folder: Path, **values: object) -> None:
    """Write the shipped config into ``folder`` with its placeholders filled from ``values``."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in resources.files("vision_agents.plugins.janus").joinpath("config").iterdir():
        if source.name.endswith(".jcfg"):
            text = string.Template(source.read_text()).substitute(values)
            (folder / source.name).write_text(text)


class JanusProcess:
    """A Janus server on ``host``, its WebSocket API on ``port`` (a free one when 0).

    ``interfaces``: the network interfaces Janus gathers ICE candidates on (Janus never uses
    loopback for media, so a machine-local setup needs another interface: see docs/janus.md).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        interfaces: str,
        token_secret: str | None = None,
        admin_key: str | None = None,
        rtp_ports: tuple[int, int] = (20000, 40000),
        debug_level: int = 3,
        executable: str = "janus",
    ) -> None:
        path = shutil.which(executable)
        if path is None:
            raise FileNotFoundError(
                f"{executable!r} not found: install Debian's janus package (apt-get install janus)"
            )
        self.executable = path
        self.host = host
        self.port = port or _free_port(host)
        self.interfaces = interfaces
        self.token_secret = token_secret or secrets.token_urlsafe(24)
        self.admin_key = admin_key or secrets.token_urlsafe(24)
        self.rtp_ports = rtp_ports
        self.debug_level = debug_level
        self._folder = Path(tempfile.mkdtemp(prefix="vision-agents-janus-"))
        self.log_path = self._folder / "janus.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self, timeout_s: float = 15.0) -> None:
        render_config(
            self._folder / "conf",
            configs_folder=self._folder / "conf",
            plugins_folder=JANUS_LIB / "plugins",
            transports_folder=JANUS_LIB / "transports",
            events_folder=JANUS_LIB / "events",
            loggers_folder=JANUS_LIB / "loggers",
            debug_level=self.debug_level,
            token_secret=self.token_secret,
            admin_key=self.admin_key,
            rtp_port_range=f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            ice_enforce_list=self.interfaces,
            ws_port=self.port,
            ws_ip=self.host,
        )
        log = self.log_path.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.executable,
                "-F",
                str(self._folder / "conf"),
                "--disable-colors",
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                # Janus 1.1.2 sometimes crashes while shutting down: no 130 MB core dump in
                # the caller's directory (the folder is ours; core dumps go off once it is up).
                cwd=self._folder,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.returncode is not None:
                raise RuntimeError(
                    f"janus exited with {self._process.returncode}; its log: {self.log_path}"
                )
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                await writer.wait_closed()
                # Janus raises its own core limit at startup; lower it once it is up (a
                # preexec_fn would do it before exec, but can deadlock a threaded parent).
                with contextlib.suppress(OSError):
                    resource.prlimit(self._process.pid, resource.RLIMIT_CORE, (0, 0))
                return
            if time.monotonic() > deadline:
                await self.stop()
                raise TimeoutError(f"janus did not listen on {self.url} in {timeout_s:.0f} s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5.0)
        except TimeoutError:
            process.kill()
            await process.wait()
        code = process.returncode
        if code is not None and code < 0 and -code not in (signal.SIGTERM, signal.SIGKILL):
            logger.warning(
                "janus crashed while stopping (%s); its log: %s",
                signal.Signals(-code).name,
                self.log_path,
            )

    async def restart(self) -> None:
        """Stop and start again on the same port with the same secrets (rooms are lost)."""
        await self.stop()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        shutil.rmtree(self._folder, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int | None:
        """Janus's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def __del__(self) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, 9)
