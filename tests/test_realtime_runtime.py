"""The shared connection runtime's options, key resolution and exception hierarchy."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

from vision_agents import VisionAgentsError
from vision_agents.core.errors import (
    ConfigurationError,
    MissingApiKeyError,
    ProtocolViolation,
    ProviderError,
    UnsupportedFeature,
)
from vision_agents.core.llm.protocol import AudioBacklog
from vision_agents.core.llm.runtime import (
    ApiKeySource,
    Keepalive,
    LinkClosed,
    RetryPolicy,
    check_websocket_open,
    close_code,
    refused_message,
)
from vision_agents.plugins import gemini, xai
from vision_agents.plugins import openai as openai_plugin


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"initial_delay": float("nan")}, "initial_delay"),
        ({"max_delay": -2}, "max_delay"),
        ({"connect_timeout": 0}, "connect_timeout"),
    ],
)
def test_retry_policy_names_the_bad_value(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_delays_start_at_once_then_back_off_to_the_cap() -> None:
    assert list(RetryPolicy(max_retries=6, initial_delay=1, max_delay=4).delays()) == [
        0.0,
        1,
        2,
        4,
        4,
        4,
    ]
    with pytest.raises(ConfigurationError, match="interval"):
        Keepalive(interval=0)


@pytest.mark.parametrize(
    ("make", "variables"),
    [
        (lambda: openai_plugin.Realtime(), "OPENAI_API_KEY"),
        (lambda: xai.Realtime(), "XAI_API_KEY"),
        (lambda: gemini.Realtime(), "GOOGLE_API_KEY or GEMINI_API_KEY"),
    ],
)
def test_every_provider_names_its_key_variables_at_construction(
    monkeypatch: pytest.MonkeyPatch, make: object, variables: str
) -> None:
    for var in ("OPENAI_API_KEY", "XAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MissingApiKeyError, match=variables) as info:
        make()  # type: ignore[operator]
    assert isinstance(info.value, VisionAgentsError) and isinstance(info.value, ValueError)


async def test_key_sources_resolve_and_never_show_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VA_TEST_KEY", "sk-env-secret")
    assert await ApiKeySource("p", None, ["VA_TEST_KEY"], required=True).get() == "sk-env-secret"
    calls = iter(["sk-one", "sk-two"])

    async def rotating() -> str:
        return next(calls)

    source = ApiKeySource("p", rotating, ["NOPE"], required=True)
    assert [await source.get(), await source.get()] == ["sk-one", "sk-two"]
    plain = ApiKeySource("p", "sk-plain-secret", ["NOPE"], required=True)
    assert "secret" not in repr(plain) and "secret" not in repr(source)
    with pytest.raises(ConfigurationError, match="returned ''"):
        await ApiKeySource("p", lambda: "", ["NOPE"], required=True).get()
    with pytest.raises(ConfigurationError, match="empty"):
        ApiKeySource("p", "", ["NOPE"], required=True)


def test_exceptions_share_one_root_and_keep_provider_fields() -> None:
    error = ProviderError("openai_realtime", "rate_limit_exceeded", "slow down", "evt_1")
    assert (error.code, error.message, error.event_id) == (
        "rate_limit_exceeded",
        "slow down",
        "evt_1",
    )
    assert "rate_limit_exceeded" in str(error)
    unsupported = UnsupportedFeature("gemini_realtime", "truncate")
    for exc in (error, unsupported, ConfigurationError("x")):
        assert isinstance(exc, VisionAgentsError)
    assert isinstance(unsupported, NotImplementedError)


def test_audio_backlog_is_bounded_and_counts_what_it_dropped() -> None:
    backlog = AudioBacklog(bytes_per_second=100, max_seconds=1.0)
    for _ in range(15):
        backlog.hold(b"x" * 10)
    assert backlog.held_bytes == 100 and backlog.dropped_bytes == 50
    assert backlog.take_held(max_chunk_bytes=40) == [b"x" * 40, b"x" * 40, b"x" * 20]


def test_audio_backlog_confirms_by_byte_position_and_by_message_index() -> None:
    backlog = AudioBacklog(bytes_per_second=1000, max_seconds=1.0)
    backlog.start_link()
    backlog.record_sent(b"a" * 100, message=1)
    backlog.record_sent(b"b" * 100, message=2)
    backlog.record_sent(b"c" * 100, message=3)
    backlog.acknowledged_to(150)  # a commit point inside the second chunk
    assert backlog.unconfirmed_bytes == 150
    backlog.acknowledged_to(120)  # an older point changes nothing
    assert backlog.unconfirmed_bytes == 150
    backlog.acknowledged_through_message(2)
    assert backlog.unconfirmed_bytes == 100
    backlog.requeue_unacknowledged()
    assert backlog.take_held(1000) == [b"c" * 100] and backlog.dropped_bytes == 0


def test_sent_audio_trimmed_for_space_counts_as_dropped_only_when_its_link_dies() -> None:
    backlog = AudioBacklog(bytes_per_second=100, max_seconds=1.0)
    backlog.start_link()
    for _ in range(15):
        backlog.record_sent(b"x" * 10)
    assert backlog.dropped_bytes == 0  # the link may still hold it
    backlog.acknowledged_to(30)  # confirmed 30 of the 50 trimmed
    backlog.requeue_unacknowledged()
    assert backlog.dropped_bytes == 20 and backlog.held_bytes == 100


def test_plugins_refuse_bad_options_by_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigurationError, match="jpeg_quality"):
        gemini.Realtime(api_key="k", jpeg_quality=0)
    with pytest.raises(ConfigurationError, match="transport"):
        openai_plugin.Realtime(api_key="k", transport="carrier-pigeon")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="response_modalities"):
        gemini.Realtime(api_key="k", response_modalities=("SMELL",))
    with pytest.raises(ConfigurationError, match="retry"):
        gemini.Realtime(api_key="k", retry=3)  # type: ignore[arg-type]


def test_a_link_our_side_failed_over_a_provider_message_says_why_on_every_path() -> None:
    # websockets' own protocol given a frame over max_size: it closes with 1009, receives no
    # close frame, and a send or ping sees the link closing before the read fails.
    ours = Protocol(Side.CLIENT, max_size=1024)
    ours.receive_data(Frame(Opcode.TEXT, b"x" * 2000).serialize(mask=False))
    with pytest.raises(LinkClosed) as closing:
        check_websocket_open(SimpleNamespace(protocol=ours))
    refused = refused_message(closing.value)
    assert isinstance(refused, ProtocolViolation) and close_code(closing.value) is None
    assert str(refused) == (
        "the provider sent a message over the size limit; our side closed the connection with "
        "1009: frame with 2000 bytes exceeds limit of 1024 bytes"
    )
    ours.receive_eof()  # what the read then raises says the same
    assert str(refused_message(ours.close_exc)) == str(refused)
    assert close_code(ours.close_exc) is None
    # a close the provider started is its code, not a refusal of ours
    theirs = Protocol(Side.CLIENT, max_size=1024)
    theirs.receive_data(
        Frame(Opcode.CLOSE, Close(1009, "too big").serialize()).serialize(mask=False)
    )
    theirs.receive_eof()
    assert refused_message(theirs.close_exc) is None and close_code(theirs.close_exc) == 1009


def test_a_send_that_finds_the_link_closing_says_what_the_provider_said() -> None:
    # The provider closed with a reason (Gemini: 1008 when the context is exhausted); a send
    # that notices before the read does must report the same words, not just the code.
    theirs = Protocol(Side.CLIENT)
    theirs.receive_data(
        Frame(Opcode.CLOSE, Close(1008, "context window exhausted").serialize()).serialize(
            mask=False
        )
    )
    with pytest.raises(LinkClosed) as closing:
        check_websocket_open(SimpleNamespace(protocol=theirs))
    assert closing.value.code == 1008 and "context window exhausted" in str(closing.value)
