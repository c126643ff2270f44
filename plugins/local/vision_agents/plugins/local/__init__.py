"""This machine as the call: camera (any FFmpeg input), microphone and speakers (PortAudio).

``LocalEdge(camera=0, microphone="default", speaker="default")`` and the device helpers.
"""

from vision_agents.plugins.local.audio import MicrophoneTrack, Speaker
from vision_agents.plugins.local.audio_devices import (
    DEFAULT,
    AudioDevice,
    find_audio_device,
    list_audio_devices,
)
from vision_agents.plugins.local.camera import (
    CameraDevice,
    CameraInput,
    CameraTrack,
    list_cameras,
    resolve_camera,
)
from vision_agents.plugins.local.edge import LocalEdge
from vision_agents.plugins.local.errors import DeviceBusyError, DeviceError, DeviceNotFoundError
from vision_agents.plugins.local.file_audio import AudioFileTrack
from vision_agents.plugins.local.preview import VideoPreview, preview_mode, window_available

__all__ = [
    "DEFAULT",
    "AudioDevice",
    "AudioFileTrack",
    "CameraDevice",
    "CameraInput",
    "CameraTrack",
    "DeviceBusyError",
    "DeviceError",
    "DeviceNotFoundError",
    "LocalEdge",
    "MicrophoneTrack",
    "Speaker",
    "VideoPreview",
    "find_audio_device",
    "list_audio_devices",
    "list_cameras",
    "preview_mode",
    "resolve_camera",
    "window_available",
]
