"""The same agent on xAI's Grok voice (OpenAI-compatible Realtime).

    XAI_API_KEY=... python examples/xai_realtime/xai_agent.py

``XAI_BASE_URL`` points it at another endpoint, such as the local server of
``python -m vision_agents.testing.serve`` (see docs/testing.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path

from vision_agents.plugins import xai

_spec = importlib.util.spec_from_file_location(
    "openai_agent", Path(__file__).resolve().parents[1] / "openai_realtime/openai_agent.py"
)
assert _spec is not None and _spec.loader is not None
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)
run = _example.run

if __name__ == "__main__":
    asyncio.run(run(xai.Realtime(voice="ara", base_url=os.environ.get("XAI_BASE_URL"))))
