"""Errors for local devices: each names what was asked for and what exists."""

from __future__ import annotations


class DeviceError(RuntimeError):
    """A local camera, microphone or speaker could not be used."""


class DeviceNotFoundError(DeviceError, LookupError):
    """No device matches the requested name or index."""


class DeviceBusyError(DeviceError):
    """The device exists but another program holds it (or the OS refused it)."""


def describe_choices(names: list[str]) -> str:
    """``"0: Foo, 1: Bar"`` or a hint that there are none."""
    if not names:
        return "none found"
    return ", ".join(names)
