"""Move this process's main thread into a fresh network namespace that has only loopback.

The browser (started from the main thread), the call server and aiortc's sockets (opened on
the main thread) then live where nothing can leave the machine. Needs CAP_SYS_ADMIN (root,
as in CI); ``enter_loopback_only()`` returns False where that is not available, and the
tests then rely on every socket binding and targeting 127.0.0.1 only.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)


def _bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


class LoopbackOnlyNamespace:
    """``enter()`` moves the calling (main) thread into a new netns; ``exit()`` moves it back."""

    def __init__(self) -> None:
        self._previous: int | None = None

    def enter(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("enter the namespace from the main thread")
        previous = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        if _libc.unshare(CLONE_NEWNET) != 0:
            os.close(previous)
            return False
        self._previous = previous
        _bring_loopback_up()
        return True

    def exit(self) -> None:
        if self._previous is None:
            return
        if _libc.setns(self._previous, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back to the original network namespace failed")
        os.close(self._previous)
        self._previous = None


def loopback_only_module() -> Iterator[bool]:
    """The body of a module fixture that runs the module's tests in a namespace with only
    loopback: yields whether it was entered (``yield from loopback_only_module()``)."""
    ns = LoopbackOnlyNamespace()
    entered = ns.enter()
    if entered:
        assert interfaces() == ["lo"]
    try:
        yield entered
    finally:
        ns.exit()


def interfaces() -> list[str]:
    """Network interfaces visible to the calling thread."""
    return [name for _index, name in socket.if_nameindex()]


def add_inside_veth(name: str, address: str) -> None:
    """A veth pair whose two ends both stay in the current namespace, with ``address`` on
    ``name``: a second interface for servers that never gather ICE candidates on loopback
    (Janus), reaching nothing beyond the namespace. Idempotent; run from the main thread."""
    if name in interfaces():
        return
    for command in (
        ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
        ["ip", "addr", "add", address, "dev", name],
        ["ip", "link", "set", name, "up"],
        ["ip", "link", "set", name + "p", "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)
