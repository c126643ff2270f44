"""Every name in the contract's import-paths table imports from the module it names."""

import importlib
import inspect

import pytest

CONTRACT = {
    "vision_agents.core": ["Agent", "User", "Participant", "PcmData"],
    "vision_agents.core.llm": ["LLM", "OmniLLM", "Realtime"],
    "vision_agents.core.llm.events": [
        "RealtimeConnectedEvent",
        "RealtimeDisconnectedEvent",
        "RealtimeAudioInputEvent",
        "RealtimeAudioOutputEvent",
        "RealtimeAudioOutputDoneEvent",
        "RealtimeResponseEvent",
        "RealtimeUserSpeechTranscriptionEvent",
        "RealtimeAgentSpeechTranscriptionEvent",
        "RealtimeErrorEvent",
    ],
    "vision_agents.core.events": ["EventManager"],
    "vision_agents.core.utils.video_forwarder": ["VideoForwarder"],
    "vision_agents.core.edge": ["EdgeTransport"],
    "vision_agents.core.processors": [
        "Processor",
        "VideoProcessor",
        "VideoPublisher",
        "VideoProcessorPublisher",
        "AudioProcessor",
        "AudioPublisher",
    ],
}

EMITTERS = {
    "_emit_connected_event": ["session_config", "capabilities"],
    "_emit_disconnected_event": ["reason", "was_clean"],
    "_emit_audio_input_event": ["audio_data", "user_metadata"],
    "_emit_audio_output_event": ["audio_data", "response_id", "user_metadata"],
    "_emit_audio_output_done_event": ["response_id", "user_metadata"],
    "_emit_response_event": [
        "text",
        "response_id",
        "is_complete",
        "conversation_item_id",
        "user_metadata",
    ],
    "_emit_user_speech_transcription": ["text", "original"],
    "_emit_agent_speech_transcription": ["text", "original"],
    "_emit_error_event": ["error", "context", "user_metadata"],
}


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, names in CONTRACT.items() for n in names]
)
def test_contract_name_imports(module: str, name: str) -> None:
    obj = getattr(importlib.import_module(module), name)
    assert inspect.isclass(obj), f"{module}.{name} should be a class"


def test_realtime_is_an_omni_llm_with_the_contract_surface() -> None:
    from vision_agents.core.llm import LLM, OmniLLM, Realtime

    assert issubclass(Realtime, OmniLLM) and issubclass(OmniLLM, LLM)
    assert Realtime.__abstractmethods__ == {"connect", "simple_audio_response", "close"}
    for prop in ("is_connected", "fps"):
        assert isinstance(getattr(Realtime, prop), property)
    assert isinstance(Realtime.provider_name, str)
    for method in (
        "simple_response",
        "watch_video_track",
        "stop_watching_video_track",
        "register_function",
    ):
        assert callable(getattr(Realtime, method))


@pytest.mark.parametrize(("emitter", "params"), list(EMITTERS.items()))
def test_emitter_signatures(emitter: str, params: list[str]) -> None:
    from vision_agents.core.llm import Realtime

    signature = inspect.signature(getattr(Realtime, emitter))
    assert list(signature.parameters)[1 : len(params) + 1] == params


def test_video_forwarder_signature() -> None:
    from vision_agents.core.utils.video_forwarder import VideoForwarder

    assert list(inspect.signature(VideoForwarder).parameters)[:2] == ["input_track", "fps"]
    add = inspect.signature(VideoForwarder.add_frame_handler).parameters
    assert {"callback", "fps", "name"} <= set(add)
    assert inspect.iscoroutinefunction(VideoForwarder.remove_frame_handler)
    assert inspect.iscoroutinefunction(VideoForwarder.stop)


def test_agent_signature() -> None:
    from vision_agents.core import Agent

    params = list(inspect.signature(Agent).parameters)
    assert params[:5] == ["edge", "agent_user", "instructions", "llm", "processors"]
    for method in ("create_call", "finish", "simple_response"):
        assert inspect.iscoroutinefunction(getattr(Agent, method))
    assert callable(Agent.join)


def test_testing_module_exports_the_test_kit() -> None:
    import vision_agents.testing as testing

    for name in ("InMemoryEdge", "FakeRealtime", "MediaFilePlayer", "make_test_video"):
        assert hasattr(testing, name)
