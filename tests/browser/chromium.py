"""Launch Debian's Chromium headless through playwright, fed from media files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"


def chromium_args(video: Path | None, audio: Path | None) -> list[str]:
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    if audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={audio}")
    return args


def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        found = shutil.which("chromium")
        if found is None:
            raise RuntimeError("Debian's chromium is not installed: apt-get install chromium")
        return found
    return CHROMIUM


async def launch(playwright: Any, video: Path | None, audio: Path | None) -> Any:
    """A headless Chromium browser (one per participant: fake devices are per process)."""
    return await playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=chromium_args(video, audio)
    )
