"""espeak-ng (the Debian package) as a ``TTS``: robotic but tiny and ~30 ms a sentence."""

from __future__ import annotations

import asyncio
import io
import shutil
import wave
from collections.abc import AsyncIterator

from vision_agents.core.audio import PcmData
from vision_agents.core.voice.tts import TTS


class EspeakTTS(TTS):
    """Runs ``espeak-ng --stdout`` per sentence (22.05 kHz mono)."""

    provider_name = "espeak"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 170) -> None:
        exe = shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng")
        self.executable = exe
        self.voice = voice
        self.words_per_minute = words_per_minute

    async def stream(self, text: str) -> AsyncIterator[PcmData]:
        if not text.strip():
            return
        process = await asyncio.create_subprocess_exec(
            self.executable,
            "-v",
            self.voice,
            "-s",
            str(self.words_per_minute),
            "--stdout",
            "--",
            text,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await process.communicate()
        except asyncio.CancelledError:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"espeak-ng failed ({process.returncode}): {err.decode()[:200]}")
        with wave.open(io.BytesIO(out), "rb") as wav:
            raw = wav.readframes(wav.getnframes())
            yield PcmData.from_bytes(raw, wav.getframerate(), wav.getnchannels(), "s16")
