"""The call server without a browser: join tokens, refusals, size limits, HTTPS, an aiortc peer."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.browser.python_peer import PythonPeer
from tests.browser.waiting import eventually
from vision_agents.plugins.webrtc import CallServer, JoinTokens, TokenError, self_signed_pem
from vision_agents.plugins.webrtc.room import send_scale_for
from vision_agents.plugins.webrtc.server import MAX_BODY_BYTES, MAX_MESSAGE_BYTES, _camera_size


def test_token_round_trip_and_claims() -> None:
    tokens = JoinTokens(b"s" * 32)
    claims = tokens.verify(tokens.mint("room-1", name="Ann", ttl_s=60), "room-1")
    assert (claims.call_id, claims.name) == ("room-1", "Ann")
    assert claims.expires_at == pytest.approx(time.time() + 60, abs=2)


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature"),
        (lambda t: "xy" + t, "malformed|signature"),
        (lambda t: t.replace(".", ""), "malformed"),
        (lambda t: "", "malformed"),
        (lambda t: t + "." + t, "malformed"),
        (lambda t: "a" * 5000, "malformed"),
    ],
)
def test_tampered_tokens_are_refused(mangle, words: str) -> None:
    tokens = JoinTokens()
    with pytest.raises(TokenError, match=words):
        tokens.verify(mangle(tokens.mint("c1")), "c1")


def test_tokens_are_bound_to_call_secret_and_time() -> None:
    tokens = JoinTokens(b"k" * 32)
    token = tokens.mint("c1", ttl_s=0.05)
    with pytest.raises(TokenError, match="another call"):
        tokens.verify(token, "c2")
    with pytest.raises(TokenError, match="signature"):
        JoinTokens(b"other-secret-0123456789").verify(token, "c1")
    time.sleep(0.1)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, "c1")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        JoinTokens(b"short")


@pytest.mark.parametrize(
    ("camera", "side", "scale"),
    [
        ((640, 480), 320, 2.0),  # exactly half
        ((1280, 720), 512, 2.0),  # 640 px: never below what is needed (2.5 would give 512)
        ((1280, 720), 320, 4.0),
        ((640, 480), 512, None),  # 1.25: no whole factor fits, full size
        ((640, 480), 1024, None),  # never upscaled
        ((480, 640), 240, 2.0),  # a portrait camera: its longest side counts
        ((640, 480), None, None),  # a consumer needs full size
        (None, 320, None),  # a page that did not say its camera's size
    ],
)
def test_a_camera_is_scaled_down_by_a_whole_factor_to_no_less_than_is_needed(
    camera: tuple[int, int] | None, side: int | None, scale: float | None
) -> None:
    assert send_scale_for(camera, side) == scale


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"width": 640, "height": 480}, (640, 480)),
        ({"width": 640}, None),
        ({"width": True, "height": 480}, None),
        ({"width": 640.0, "height": 480}, None),
        ({"width": 0, "height": 480}, None),
        ({"width": 100_000, "height": 480}, None),
        ("640x480", None),
        (None, None),
    ],
)
def test_the_camera_size_a_page_reports_is_checked(
    value: object, size: tuple[int, int] | None
) -> None:
    assert _camera_size(value) == size


@pytest.fixture
async def server() -> AsyncIterator[CallServer]:
    srv = CallServer(max_participants=1)
    srv.room("c1")
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def _check(server: CallServer, body: object) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.base_url}/api/check", json=body) as resp,
    ):
        return resp.status, await resp.json()


async def test_check_says_why_a_link_is_refused(server: CallServer) -> None:
    token = server.tokens.mint("c1", name="Ann")
    assert await _check(server, {"call": "c1", "token": token}) == (
        200,
        {"slots": 2, "name": "Ann", "agent": "Agent"},
    )
    status, body = await _check(server, {"call": "c1", "token": token[:-1]})
    assert status == 403 and "not valid" in str(body["error"])
    status, body = await _check(server, {"call": "nope", "token": token})
    assert status == 404 and "does not exist" in str(body["error"])
    status, body = await _check(server, {"call": "../etc", "token": token})
    assert status == 404


async def test_bodies_and_messages_are_bounded(server: CallServer) -> None:
    async with aiohttp.ClientSession() as session:
        big = {"call": "c1", "token": "x" * MAX_BODY_BYTES}
        async with session.post(f"{server.base_url}/api/check", json=big) as resp:
            assert resp.status == 413
        url = f"{server.base_url}/api/ws?call=c1&token={server.tokens.mint('c1')}"
        async with session.ws_connect(url) as ws:
            await ws.send_str('{"type": "offer", "sdp": "' + "v" * MAX_MESSAGE_BYTES + '"}')
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        async with session.ws_connect(url) as ws:
            await ws.send_json({"type": "offer", "sdp": "v=0\r\n"})
            reply = await ws.receive_json(timeout=5)
            assert reply["type"] == "error" and "slots" in reply["error"]
    assert server.rooms["c1"].members == []


async def test_websocket_refuses_bad_tokens_before_any_webrtc(server: CallServer) -> None:
    async with aiohttp.ClientSession() as session:
        for token in ("", "abc.def", server.tokens.mint("c1", ttl_s=0.001)):
            await asyncio.sleep(0.01)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(f"{server.base_url}/api/ws?call=c1&token={token}")
            assert info.value.status == 403
    assert server.rooms["c1"].members == []


async def test_participant_limit_and_leaving(server: CallServer) -> None:
    peer = await PythonPeer.join(server.join_url("c1"))
    try:
        room = server.rooms["c1"]
        assert len(room.members) == 1
        status, body = await _check(server, {"call": "c1", "token": server.tokens.mint("c1")})
        assert status == 409 and "full" in str(body["error"])
    finally:
        await peer.leave()
    await eventually(lambda: room.members == [], 2, "the room to empty")


async def test_https_with_a_generated_or_given_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_pem(["127.0.0.1", "localhost"])
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    srv = CallServer(certfile=tmp_path / "cert.pem", keyfile=tmp_path / "key.pem")
    srv.room("c1")
    await srv.start()
    try:
        assert srv.base_url.startswith("https://127.0.0.1:")
        client = ssl.create_default_context(cadata=cert.decode())
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{srv.base_url}/call/c1", ssl=client) as resp,
        ):
            assert resp.status == 200
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
            assert "Vision Agents call" in await resp.text()
    finally:
        await srv.stop()
    # Off loopback, HTTPS is on even without a certificate (a self-signed one is made).
    assert CallServer(host="0.0.0.0", public_host="demo.local").base_url.startswith("https://")
