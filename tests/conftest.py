"""Fixtures shared by the test modules: leak checks, the local protocol servers and media.

Timing-sensitive tests carry ``@pytest.mark.timing``; ``scripts/test_under_load.sh`` runs them
again with CPU burners beside them (see docs/testing.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from tests.browser.waiting import eventually
from vision_agents.core.audio import PcmData
from vision_agents.testing import make_test_video, synthesize_speech

# Started as a background job (as a CI runner may), pytest and so every child it starts would
# ignore SIGINT, and the tests that press Ctrl-C on a child could not. A handler installed here
# is reset to the default in each child at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.asynccontextmanager
async def no_leaks() -> AsyncIterator[None]:
    """Fail if the block leaves tasks or threads behind."""
    tasks_before = asyncio.all_tasks()
    threads_before = set(threading.enumerate())
    yield
    leftover_tasks = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    assert not leftover_tasks, f"tasks left running: {leftover_tasks}"
    leftover_threads = [
        t for t in threading.enumerate() if t not in threads_before and t.is_alive()
    ]
    assert not leftover_threads, f"threads left running: {leftover_threads}"


@pytest.fixture
async def leak_check() -> AsyncIterator[None]:
    """The test must leave no task or thread running (checked after the test body)."""
    async with no_leaks():
        yield


async def wait_until(
    check: Callable[[], bool] | Callable[[], Awaitable[bool]], within_s: float, what: str
) -> None:
    """Wait for a condition instead of sleeping; fails naming ``what`` after ``within_s``."""
    await eventually(check, within_s, what)


# -- media -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (one face; 512x512 RGB), shipped in the [models] extra."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def photo(astronaut: np.ndarray) -> np.ndarray:
    """A 640x480 frame holding the astronaut photo."""
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, 80:560] = astronaut[16:496, 16:496]
    return frame


@pytest.fixture(scope="session")
def speech() -> PcmData:
    """A sentence spoken by espeak-ng (22.05 kHz mono)."""
    return synthesize_speech("Hello agent, this is a short test of the audio path.")


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory, speech: PcmData) -> Path:
    """3 s of numbered 30 fps frames with ``speech`` as its sound."""
    path = tmp_path_factory.mktemp("media") / "speech.mkv"
    return make_test_video(path, seconds=3.0, fps=30, audio=speech)


# -- timing-sensitive tests ------------------------------------------------------------------

TIMING_TESTS: dict[str, set[str]] = {
    # module -> tests that measure rates, ages, latencies or real-time playback ("*": all).
    # scripts/test_under_load.sh runs them with CPU burners beside them.
    "test_agent.py": {
        "test_agent_hears_sees_and_speaks_and_leaves_nothing_running",
        "test_participant_leaving_stops_their_frames_at_once",
        "test_model_watches_the_newest_camera_and_falls_back",
        "test_interrupted_reply_is_dropped_from_the_published_track",
    },
    "test_demo_cli.py": {"test_demo_prints_the_link_once_ready_and_leaves_cleanly_on_ctrl_c"},
    "test_detection.py": {
        "test_processor_rules_need_stable_counts_and_respect_cooldowns",
        "test_processor_runs_detection_at_its_own_rate_and_publishes_every_frame",
        "test_link_speaks_and_pushes_the_summary",
    },
    "test_events.py": {"test_slow_handler_does_not_delay_others"},
    "test_examples.py": {"test_demo_agent_describes_what_a_participant_shows"},
    "test_gemini_agent.py": {"*"},
    "test_gemini_live.py": {
        "test_setup_carries_settings_and_audio_arrives_as_16k_pcm",
        "test_audio_transcripts_text_and_tools_round_trip",
        "test_interruption_stops_output_at_once",
        "test_frames_are_jpeg_within_the_size_limit_at_fps",
    },
    "test_gemini_resumption.py": {"*"},
    "test_local_audio.py": {
        "test_agent_hears_what_is_played_into_the_microphone",
        "test_speakers_play_what_the_agent_says_in_real_time",
    },
    "test_local_camera.py": {
        "test_lavfi_test_pattern_plays_in_real_time",
        "test_video_file_plays_every_frame_in_order_then_ends",
        "test_agent_sees_the_camera_and_hears_a_wav_through_local_edge",
    },
    "test_openai_agent.py": {"*"},
    "test_twilio.py": {
        "test_an_offline_agent_answers_a_phone_call_and_a_barge_in_clears_twilios_queue"
    },
    "test_openai_realtime.py": {
        "test_barge_in_truncates_at_the_played_position",
        "test_twenty_drops_recovered_with_the_conversation_intact",
        "test_frames_at_fps",
        "test_session_updates_and_interrupt_on_the_wire",
    },
    "test_realtime_base.py": {"test_video_is_sent_at_fps_and_stops_when_asked"},
    "test_speak_up.py": {"test_each_change_asks_gemini_for_a_remark_within_500_ms"},
    "test_video_forwarder.py": {
        "test_each_consumer_gets_its_own_rate_of_fresh_frames",
        "test_stats_count_delivered_and_skipped_frames",
        "test_forwarder_fps_caps_every_consumer",
        "test_slow_sync_callback_runs_in_one_thread_and_never_blocks_the_loop",
        "test_stopping_the_track_ends_a_low_rate_consumer_promptly",
        "test_removing_the_last_handler_stops_reading_and_adding_restarts",
        "test_removing_one_handler_leaves_the_others_running",
        "test_stop_cancels_busy_handlers_and_is_idempotent",
    },
    "test_video_backlog.py": {"*"},
    "test_voice_agent.py": {"*"},
    "test_webrtc_decoders.py": {
        "test_a_receiver_that_cannot_keep_up_delivers_fresh_frames_instead_of_late_ones"
    },
    # The three-browser test is not here: three Chromium processes beside two CPU burners are
    # more than two cores carry (joins took over 90 s); it runs in the normal suite.
    "test_webrtc_browser.py": {
        "test_agent_and_browser_exchange_audio_and_video",
        "test_wrong_or_expired_token_is_refused_with_a_clear_message",
        "test_browser_talks_to_gemini_through_the_agent",
    },
}


def is_timing_test(module: str, name: str) -> bool:
    names = TIMING_TESTS.get(module, set())
    return "*" in names or name in names


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "timing: measures rates, ages or real-time playback; run again under CPU load by "
        "scripts/test_under_load.sh",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", None) or item.name
        if is_timing_test(item.path.name, name):
            item.add_marker(pytest.mark.timing)
