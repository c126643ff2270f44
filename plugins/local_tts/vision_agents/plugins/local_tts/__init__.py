"""Local text-to-speech, no network: ``local_tts.HibariTTS()`` (neural) or ``local_tts.EspeakTTS()``."""

from vision_agents.plugins.local_tts.espeak import EspeakTTS
from vision_agents.plugins.local_tts.hibari import HibariTTS, default_tts

__all__ = ["EspeakTTS", "HibariTTS", "default_tts"]
