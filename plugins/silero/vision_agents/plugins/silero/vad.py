"""Silero VAD (v6 ONNX) run by onnxruntime; the model file ships inside ``faster-whisper``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from vision_agents.core.errors import ModelNotAvailableError
from vision_agents.core.voice.vad import VAD as BaseVAD

_CONTEXT = 64  # samples of the previous window the model sees before each 512-sample window


def default_model_path() -> Path:
    """``faster_whisper/assets/silero_vad_v6.onnx``; raises with the fix if it is missing."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "silero_vad_v6.onnx",
            what="Silero VAD model",
            extra="silero",
            option="silero.VAD(model_path=...)",
            reason="it ships in the faster-whisper package, which is not installed",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ModelNotAvailableError(
            "silero_vad_v6.onnx",
            what="Silero VAD model",
            extra="silero",
            option="silero.VAD(model_path=...)",
            reason=f"no file at {path}",
        )
    return path


class _State:
    def __init__(self) -> None:
        self.h = np.zeros((1, 1, 128), dtype=np.float32)
        self.c = np.zeros((1, 1, 128), dtype=np.float32)
        self.context = np.zeros(_CONTEXT, dtype=np.float32)


class VAD(BaseVAD):
    """Silero VAD: 32 ms windows at 16 kHz, ~0.1 ms each on one CPU thread.

    Thresholds and padding as in ``vision_agents.core.voice.VAD``.
    """

    window_samples = 512

    def __init__(self, model_path: str | Path | None = None, **thresholds: Any) -> None:
        super().__init__(**thresholds)
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"Silero model not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        names = {i.name for i in self._session.get_inputs()}
        if names != {"input", "h", "c"}:
            raise ValueError(
                f"{path} is not a Silero v6 model (inputs input, h, c); its inputs: {sorted(names)}"
            )

    def new_state(self) -> object:
        return _State()

    def probability(self, window: NDArray[np.float32], state: object) -> tuple[float, object]:
        if not isinstance(state, _State):
            raise TypeError(f"state must come from new_state(), got {type(state).__name__}")
        x = np.concatenate([state.context, window]).reshape(1, -1).astype(np.float32)
        prob, state.h, state.c = self._session.run(None, {"input": x, "h": state.h, "c": state.c})
        state.context = window[-_CONTEXT:].astype(np.float32)
        return float(np.asarray(prob).reshape(-1)[0]), state
