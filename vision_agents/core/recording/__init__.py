"""Call recording: the call's audio, video and transcript, written to a file as it happens.

See ``docs/recording.md``. Opt-in: nothing is recorded unless ``agent.start_recording`` (or
``CallRecorder.start``) is called, and the call's pages show that it is.
"""

from vision_agents.core.recording.recorder import (
    CallRecorder,
    RecordingError,
    RecordingSummary,
)
from vision_agents.core.recording.writer import RecordingWriter, WriterStats

__all__ = ["CallRecorder", "RecordingError", "RecordingSummary", "RecordingWriter", "WriterStats"]
