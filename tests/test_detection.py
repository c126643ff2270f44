"""Detection core: OpenCV on real photos, YOLO decoding, rules, the processor in an agent."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from functools import partial
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import wait_until
from vision_agents.core import Agent, User
from vision_agents.core.processors.detection import (
    Detection,
    DetectionAgentLink,
    DetectionEvent,
    DetectionProcessor,
    DetectorBackend,
    OpenCVDetector,
    ProcessBackend,
    SceneSummaryEvent,
    SpeakRequestEvent,
    count_reached,
    describe_counts,
    draw_detections,
    object_appeared,
    someone_entered,
)
from vision_agents.core.processors.detection.yolo import Letterbox, decode, letterbox, nms
from vision_agents.core.types import Participant
from vision_agents.testing import FakeRealtime, InMemoryEdge, make_test_video

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/detection_voice/doorcam.py"

# The astronaut's face, measured on the photo: x 170-285, y 55-175.
FACE_REGION = (170, 55, 285, 175)


def test_opencv_finds_the_one_face_on_the_astronaut(astronaut: np.ndarray) -> None:
    faces = OpenCVDetector(("face",)).detect(astronaut)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    fx1, fy1, fx2, fy2 = FACE_REGION
    assert fx1 <= x1 < x2 <= fx2 and fy1 <= y1 < y2 <= fy2
    assert (x2 - x1) > 60 and faces[0].label == "face" and 0 < faces[0].score <= 1


def test_opencv_face_box_scales_back_from_a_larger_frame(astronaut: np.ndarray) -> None:
    big = np.kron(astronaut, np.ones((2, 2, 1), dtype=np.uint8))  # 1024 x 1024
    faces = OpenCVDetector(("face",), max_side=512).detect(big)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    assert 2 * FACE_REGION[0] <= x1 < x2 <= 2 * FACE_REGION[2]
    assert 2 * FACE_REGION[1] <= y1 < y2 <= 2 * FACE_REGION[3]


@pytest.mark.parametrize("kinds", [("face",), ("person",), ("face", "person")])
def test_opencv_finds_nothing_on_blank_frames(kinds: tuple[str, ...]) -> None:
    detector = OpenCVDetector(kinds)
    for value in (0, 128, 255):
        assert detector.detect(np.full((480, 640, 3), value, dtype=np.uint8)) == []


def test_opencv_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="some of"):
        OpenCVDetector(("cat",))
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        OpenCVDetector().detect(np.zeros((10, 10), dtype=np.uint8))


def test_nms_keeps_the_best_box_per_overlapping_group_and_class() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=np.float32
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6], dtype=np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, 0.5, classes).tolist() == [0, 2, 3]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_letterbox_pads_and_maps_back() -> None:
    rgb = np.zeros((240, 640, 3), dtype=np.uint8)
    tensor, box = letterbox(rgb, (320, 320))
    assert tensor.shape == (1, 3, 320, 320) and tensor.dtype == np.float32
    assert box.scale == 0.5 and box.pad_x == 0 and box.pad_y == 100
    assert np.allclose(tensor[0, :, :100], 114 / 255) and np.allclose(tensor[0, :, 100:220], 0)
    xy = box.to_frame(np.array([[10, 110, 300, 210]], dtype=np.float32))
    assert xy.tolist() == [[20, 20, 600, 220]]


def test_decode_yolo_detect_output() -> None:
    # [4 + 2 classes, 3 anchors] in input pixels of a 64x64 letterbox of a 128x64 frame.
    out = np.array(
        [
            [32, 33, 10],  # cx
            [32, 32, 20],  # cy
            [20, 20, 8],  # w
            [10, 10, 8],  # h
            [0.9, 0.8, 0.05],  # class 0
            [0.1, 0.1, 0.6],  # class 1
        ],
        dtype=np.float32,
    )[None]
    box = Letterbox(scale=0.5, pad_x=0, pad_y=16, width=128, height=64)
    dets = decode(out, box, {0: "cat", 1: "dog"})
    assert [d.label for d in dets] == ["cat", "dog"]
    assert dets[0].box == pytest.approx((44, 22, 84, 42))
    assert dets[1].box == pytest.approx((12, 0, 28, 16))  # clipped at the top edge
    assert dets[0].score == pytest.approx(0.9)


def test_decode_pose_and_end2end_outputs() -> None:
    box = Letterbox(scale=1.0, pad_x=0, pad_y=0, width=100, height=100)
    pose = np.array([[50], [50], [20], [40], [0.8], [45], [35], [0.9], [55], [60], [0.2]])
    (det,) = decode(pose.astype(np.float32), box, {0: "person"}, num_keypoints=2)
    assert det.box == pytest.approx((40, 30, 60, 70))
    assert det.keypoints is not None
    assert np.allclose(det.keypoints, [(45, 35, 0.9), (55, 60, 0.2)])
    e2e = np.array([[[10, 10, 30, 30, 0.7, 2], [0, 0, 5, 5, 0.1, 0]]], dtype=np.float32)
    (det,) = decode(e2e, box, {2: "car"}, end2end=True)
    assert det.label == "car" and det.box == pytest.approx((10, 10, 30, 30))
    with pytest.raises(ValueError, match="too few"):
        decode(np.zeros((1, 5, 3), np.float32), box, {}, num_keypoints=17)


def test_draw_detections_changes_pixels_in_the_box_only() -> None:
    rgb = np.zeros((100, 100, 3), dtype=np.uint8)
    kpts = tuple((50.0 + i, 50.0 + i, 1.0) for i in range(17))
    draw_detections(rgb, [Detection("person", 0.9, (20, 30, 80, 90), kpts)])
    assert rgb[30, 50].any() and rgb[60, 20].any()  # box edges
    assert not rgb[95:, :10].any()  # far corner untouched


def test_describe_counts_and_rules() -> None:
    assert describe_counts({"person": 2, "cup": 1}) == "2 people, 1 cup"
    assert describe_counts({}) == "nothing detected"
    before, after = Counter({"person": 1}), Counter({"person": 2, "dog": 1})
    assert someone_entered().when(before, after)
    assert not someone_entered().when(after, before)
    assert object_appeared("dog").when(before, after)
    assert count_reached("person", 2).when(before, after)
    assert not count_reached("person", 3).when(before, after)
    assert "2 people, 1 dog" in someone_entered().render(before, after)


class ScriptedBackend(DetectorBackend):
    """Returns the next scripted list of detections for each frame (a slow fake model)."""

    name = "scripted"

    def __init__(self, script: list[list[Detection]], delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.calls = 0
        self.closed = False

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import time

        time.sleep(self.delay)
        dets = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return dets


def person(x: float) -> Detection:
    return Detection("person", 0.9, (x, 10, x + 40, 100))


async def test_processor_rules_need_stable_counts_and_respect_cooldowns() -> None:
    script = [[], [], [person(0)], [person(0)], [], [person(0)], [person(0)], [person(0)]]
    backend = ScriptedBackend(script)
    now = [0.0]
    proc = DetectionProcessor(
        backend,
        detect_fps=1000,
        rules=[someone_entered(cooldown_s=100)],
        stable_rounds=2,
        clock=lambda: now[0],
    )
    speak: list[SpeakRequestEvent] = []
    summaries: list[SceneSummaryEvent] = []
    detections: list[DetectionEvent] = []

    async def on(event: SpeakRequestEvent | SceneSummaryEvent | DetectionEvent) -> None:
        if isinstance(event, SpeakRequestEvent):
            speak.append(event)
        elif isinstance(event, SceneSummaryEvent):
            summaries.append(event)
        else:
            detections.append(event)

    proc.events.subscribe(on)
    alice = Participant(user_id="alice", session_id="s1")
    frame = av.VideoFrame.from_ndarray(np.zeros((120, 160, 3), np.uint8), format="rgb24")
    for i in range(len(script)):
        now[0] = float(i)
        await proc.process_video(frame, alice)
        await wait_until(lambda i=i: proc.rounds > i, 10, f"detection round {i + 1}")
    await proc.events.wait(timeout=2)
    assert backend.calls == len(script)
    assert len(detections) == len(script) and detections[2].labels == ["person"]
    # empty (stable) -> 1 person (stable at round 4) -> single empty round is a flicker
    assert [s.summary for s in summaries] == ["nothing detected", "1 person"]
    assert len(speak) == 1 and speak[0].rule == "person_entered"
    assert proc.scene()["alice"]["counts"] == {"person": 1}
    await proc.close()


async def test_processor_runs_detection_at_its_own_rate_and_publishes_every_frame(
    tmp_path: Path,
) -> None:
    clip = make_test_video(tmp_path / "cam.mkv", seconds=2.0, fps=30, size=(320, 240))
    # A slow detector (100 ms a frame) at 4 fps must not slow the published video.
    backend = ScriptedBackend([[person(100)]], delay=0.1)
    proc = DetectionProcessor(backend, detect_fps=4)
    edge = InMemoryEdge()
    model = FakeRealtime(fps=5)
    model.frame_policy = None  # fixed rate: the model's feed is counted below
    agent = Agent(edge=edge, agent_user=User(name="cam"), llm=model, processors=[proc])
    link = DetectionAgentLink(proc, model)
    async with agent.join(await agent.create_call("default", "det")):
        await edge.add_participant("alice", clip)
        await wait_until(
            lambda: edge.published.video_frames >= 30 and backend.calls >= 3,
            15,
            "published video and detections",
        )
        result = await model.tools.call("what_is_in_view", {})
    link.close()
    published = edge.published.video_frames
    assert published >= 30, f"only {published} of ~60 source frames were published"
    assert 3 <= backend.calls <= 10, backend.calls  # ~4 fps over 2 s
    assert len(model.frames) >= 5  # the model's 5 fps feed kept going
    assert result.ok and result.value["alice"]["counts"] == {"person": 1}
    last = edge.published.last_video_frame
    assert last is not None
    pixels = last.to_ndarray(format="rgb24")
    assert (pixels[10, 100:140] != 0).any()  # the box's top edge is drawn


async def test_link_speaks_and_pushes_the_summary() -> None:
    backend = ScriptedBackend([[], [], [person(0)], [person(0)]])
    proc = DetectionProcessor(backend, detect_fps=1000, rules=[someone_entered()])
    model = FakeRealtime()
    model.set_instructions("Watch the door.")
    link = DetectionAgentLink(proc, model, push_summary=True)
    alice = Participant(user_id="alice", session_id="s1")
    frame = av.VideoFrame.from_ndarray(np.zeros((120, 160, 3), np.uint8), format="rgb24")
    for i in range(4):
        await proc.process_video(frame, alice)
        await wait_until(lambda i=i: proc.rounds > i, 10, f"detection round {i + 1}")
    await proc.events.wait(timeout=2)
    assert len(model.texts) == 1 and "came into view" in model.texts[0]
    assert model.instructions.startswith("Watch the door.")
    assert model.instructions.endswith("alice: 1 person")
    link.close()
    assert "what_is_in_view" not in [t.name for t in model.tools.schemas()]
    await proc.close()


@pytest.mark.timeout(90)
async def test_detection_voice_example_runs_offline_and_answers_a_spoken_question(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.util

    from vision_agents.plugins import local_tts
    from vision_agents.testing import write_wav

    for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    tts = local_tts.default_tts()
    question = write_wav(tmp_path / "q.wav", await tts.synthesize("How many people do you see?"))
    await tts.close()
    spec = importlib.util.spec_from_file_location("doorcam", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    link = await module.main(seconds=3.5, question=question)
    out = capsys.readouterr().out
    assert "OFFLINE mode" in out
    assert link.spoken and "came into view (now 1 face)" in link.spoken[0]
    # The announcement went through the voice pipeline: spoken, and labelled offline.
    assert "agent spoke: Offline mode, with no AI model." in out
    assert "resident said: How many people" in out, out  # Whisper heard the question
    assert "agent spoke: I see one person." in out, out  # ...and the answer was spoken
    assert "what_is_in_view -> {'door': {'summary': '1 face'" in out


class WhereProbe(DetectorBackend):
    """Reports the process it runs in and that process's nice value, as a label."""

    name = "where-probe"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return [Detection(f"{os.getpid()}:{os.nice(0)}", 1.0, (0, 0, 10, 10))]


async def test_a_backend_factory_runs_in_a_child_process_below_our_priority() -> None:
    proc = DetectionProcessor(WhereProbe, detect_fps=1000, worker_niceness=7)
    assert isinstance(proc.backend, ProcessBackend) and proc.backend_name == "where-probe"
    events: list[DetectionEvent] = []

    async def on(event: DetectionEvent) -> None:
        events.append(event)

    proc.events.subscribe(on)
    frame = av.VideoFrame.from_ndarray(np.zeros((120, 160, 3), np.uint8), format="rgb24")
    alice = Participant(user_id="alice", session_id="s1")
    for _ in range(600):  # the child starts a fresh interpreter: seconds on a busy machine
        await proc.process_video(frame, alice)
        if proc.rounds:
            break
        await asyncio.sleep(0.05)
    assert proc.rounds, "no detection came back from the child process"
    (label,) = proc.scene()["alice"]["counts"]
    pid, nice = (int(v) for v in label.split(":"))
    assert pid != os.getpid() and pid == proc.backend.child_pid
    assert nice == min(19, os.nice(0) + 7)
    await proc.events.wait(timeout=2)
    assert events and events[0].backend == "where-probe"
    await proc.close()
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(pid, 0)
    with pytest.raises(ValueError, match="backend must be"):
        DetectionProcessor(42)  # type: ignore[arg-type]


def test_process_backend_runs_opencv_and_reports_a_failed_build(astronaut: np.ndarray) -> None:
    faces = ProcessBackend(partial(OpenCVDetector, ("face",)))
    try:
        (face,) = faces.detect(astronaut)
        assert face.label == "face" and FACE_REGION[0] <= face.box[0] < FACE_REGION[2]
    finally:
        faces.close()
    with pytest.raises(RuntimeError, match="closed"):
        faces.detect(astronaut)
    broken = ProcessBackend(partial(OpenCVDetector, ("cat",)))
    try:
        with pytest.raises(RuntimeError, match=r"building the detector failed.*cat"):
            broken.detect(astronaut)
    finally:
        broken.close()
