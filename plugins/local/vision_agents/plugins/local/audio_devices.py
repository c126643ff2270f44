"""Microphones and speakers as PortAudio (``sounddevice``) sees them: listing and choosing."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from vision_agents.plugins.local.errors import DeviceNotFoundError, describe_choices

Direction = Literal["input", "output"]

DEFAULT = "default"
"""Choose the system's default microphone or speaker."""

_lock = threading.Lock()
_open_streams = 0


@dataclass(frozen=True)
class AudioDevice:
    """One PortAudio device; ``index`` is what PortAudio calls it in this process."""

    index: int
    name: str
    host_api: str
    input_channels: int
    output_channels: int
    default_sample_rate: int

    def __str__(self) -> str:
        return f"{self.index}: {self.name} ({self.host_api})"


def sounddevice() -> ModuleType:
    """The ``sounddevice`` module, or an error that says what to install."""
    try:
        import sounddevice as sd
    except ImportError as exc:
        raise RuntimeError(
            "microphone and speakers need the `sounddevice` package: "
            "pip install 'vision-agents[local]'"
        ) from exc
    except OSError as exc:  # the module loads but finds no PortAudio library
        raise RuntimeError(
            "the PortAudio library was not found: install it (Debian/Ubuntu: "
            "`apt-get install libportaudio2`; macOS: `brew install portaudio`)"
        ) from exc
    module: ModuleType = sd
    return module


def list_audio_devices(*, refresh: bool = True) -> list[AudioDevice]:
    """Every microphone and speaker PortAudio can open now.

    PortAudio takes its device list when it starts; ``refresh`` restarts it so devices (or a
    sound server) that appeared since are seen. It is skipped while a stream of ours is open.
    """
    sd = sounddevice()
    with _lock:
        if refresh and _open_streams == 0:
            sd._terminate()  # the documented way to rescan devices
            sd._initialize()
        apis: list[dict[str, Any]] = list(sd.query_hostapis())
        return [
            AudioDevice(
                index=i,
                name=str(d["name"]),
                host_api=str(apis[d["hostapi"]]["name"]),
                input_channels=int(d["max_input_channels"]),
                output_channels=int(d["max_output_channels"]),
                default_sample_rate=round(float(d["default_samplerate"])),
            )
            for i, d in enumerate(sd.query_devices())
        ]


def find_audio_device(choice: int | str, direction: Direction) -> AudioDevice:
    """The device for ``choice``: an index, ``"default"``, or (part of) a name, case-insensitive.

    An exact name wins over a partial one; several partial matches are an error that lists them.
    """
    devices = list_audio_devices()
    usable = [d for d in devices if _channels(d, direction) > 0]
    what = "microphone" if direction == "input" else "speaker"
    if isinstance(choice, str) and choice.strip().isdigit():
        choice = int(choice)
    if choice == DEFAULT:
        sd = sounddevice()
        index = int(sd.default.device[0 if direction == "input" else 1])
        if index < 0:
            raise DeviceNotFoundError(
                f"there is no default {what}; choose one by name or index from: "
                f"{describe_choices([str(d) for d in usable])}"
            )
        choice = index
    if isinstance(choice, int):
        for device in usable:
            if device.index == choice:
                return device
        raise DeviceNotFoundError(
            f"no {what} with index {choice}; {what}s: {describe_choices([str(d) for d in usable])}"
        )
    wanted = choice.casefold()
    exact = [d for d in usable if d.name.casefold() == wanted]
    if exact:
        return exact[0]
    partial = [d for d in usable if wanted in d.name.casefold()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise DeviceNotFoundError(
            f"{what} name {choice!r} is ambiguous; it matches: "
            f"{describe_choices([str(d) for d in partial])}"
        )
    raise DeviceNotFoundError(
        f"no {what} named {choice!r}; {what}s: {describe_choices([str(d) for d in usable])}"
    )


def stream_opened() -> None:
    global _open_streams
    with _lock:
        _open_streams += 1


def stream_closed() -> None:
    global _open_streams
    with _lock:
        _open_streams = max(0, _open_streams - 1)


def _channels(device: AudioDevice, direction: Direction) -> int:
    return device.input_channels if direction == "input" else device.output_channels
