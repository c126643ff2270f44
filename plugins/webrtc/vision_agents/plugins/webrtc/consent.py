"""ICE consent freshness (RFC 7675) that a busy machine does not mistake for a dead peer.

aioice checks consent every ~5 s with one STUN request that gets 0.5 s to be answered and no
retransmission, and closes the connection after six misses in a row. On a loaded machine
(the browser's network thread and our event loop both late) answers take longer than that
for a while, every check misses, and a live call is cut 30 s later: this is what dropped
browsers from calls beside CPU burners, and every call of the density benchmark at 5+
sessions. RFC 7675 only asks that consent expire 30 s after the last answer, and lets the
checks be retransmitted. ``install_tolerant_consent`` (process-wide, once) makes aioice's
connections do that: each check is retransmitted (0.5, 1, 2 s: ~3.5 s to answer), and the
connection closes only after ``CONSENT_TIMEOUT_S`` with no answer to a check *and* nothing
received from the peer on the connection.

That last part goes beyond the RFC, which counts only answers. Beside CPU burners, Chromium
stopped answering consent checks on the pair aioice had nominated while it kept sending
media (DTLS-protected, so it comes from the peer that set up the call) to us on that same
path. A peer sending us its media is present and willing, and the RFC's aim (never keep
sending to an address that no longer wants our traffic) holds: a peer that goes away stops
both, and the call ends 30 s later as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import aioice.ice
from aioice import stun

logger = logging.getLogger(__name__)

CONSENT_INTERVAL_S = 5.0  # RFC 7675: randomised between 0.8 and 1.2 times this
CONSENT_TIMEOUT_S = 30.0  # RFC 7675 section 5.1
CHECK_RETRANSMISSIONS = 2  # RTO 0.5 s, doubling: a check waits up to 3.5 s for its answer

_installed = False
aioice_query_consent = aioice.ice.Connection.query_consent
"""aioice's own consent loop, kept for comparison."""
_RECEIVED_AT = "_vision_agents_received_at"  # set on each aioice connection as data arrives


async def query_consent(connection: Any) -> None:
    """Replaces ``aioice.Connection.query_consent``: see the module docstring."""
    assert connection.remote_password is not None
    answered_at = time.monotonic()
    while True:
        await asyncio.sleep(CONSENT_INTERVAL_S * (0.8 + 0.4 * random.random()))
        for pair in list(connection._nominated.values()):
            request = connection.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request,
                    pair.remote_addr,
                    integrity_key=connection.remote_password.encode("utf8"),
                    retransmissions=CHECK_RETRANSMISSIONS,
                )
                answered_at = time.monotonic()
            except stun.TransactionError:
                pass
        silent = time.monotonic() - max(answered_at, getattr(connection, _RECEIVED_AT, 0.0))
        if silent >= CONSENT_TIMEOUT_S:
            logger.info(
                "%s: no consent answer and nothing received for %.0f s; closing", connection, silent
            )
            connection._query_consent_task = None
            await connection.close()
            return


def install_tolerant_consent() -> None:
    """Make every aioice connection in this process check consent as above (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True

    async def patched(self: Any) -> None:
        await query_consent(self)

    original_received = aioice.ice.Connection.data_received

    def received(self: Any, data: bytes, component: int) -> None:
        setattr(self, _RECEIVED_AT, time.monotonic())
        original_received(self, data, component)

    # aioice starts query_consent as a task once connected, and hands every datagram that is
    # not STUN to data_received (neither is a documented hook).
    setattr(aioice.ice.Connection, "query_consent", patched)  # noqa: B010
    setattr(aioice.ice.Connection, "data_received", received)  # noqa: B010
