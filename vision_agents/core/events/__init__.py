"""Typed events and the bus that delivers them: ``EventManager``."""

from vision_agents.core.events.base import BaseEvent, EventsDroppedEvent, HandlerErrorEvent
from vision_agents.core.events.manager import EventManager

__all__ = ["BaseEvent", "EventManager", "EventsDroppedEvent", "HandlerErrorEvent"]
