"""Who takes part in a call: users and their participation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class User:
    """A person or an agent, independent of any call."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    name: str = ""
    image: str | None = None
    custom: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Participant:
    """A user's presence in one call; one user can join twice (two devices, two sessions)."""

    user_id: str
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    name: str = ""

    @classmethod
    def for_user(cls, user: User) -> Participant:
        return cls(user_id=user.id, name=user.name)
