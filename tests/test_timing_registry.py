"""The list of timing-sensitive tests in conftest names real tests (it cannot silently rot)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import TIMING_TESTS, is_timing_test

TESTS = Path(__file__).resolve().parent


def function_names(module: str) -> set[str]:
    tree = ast.parse((TESTS / module).read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_listed_timing_test_exists() -> None:
    missing = {
        f"{module}::{name}"
        for module, names in TIMING_TESTS.items()
        for name in names - {"*"}
        if name not in function_names(module)
    }
    assert missing == set()


def test_the_reported_load_failures_are_timing_tests() -> None:
    for module, name in [
        ("test_openai_realtime.py", "test_frames_at_fps"),
        ("test_openai_realtime.py", "test_session_updates_and_interrupt_on_the_wire"),
        ("test_voice_agent.py", "test_spoken_question_gets_a_spoken_answer_and_barge_in_cuts_it"),
        ("test_gemini_live.py", "test_frames_are_jpeg_within_the_size_limit_at_fps"),
    ]:
        assert is_timing_test(module, name), (module, name)
    assert not is_timing_test("test_pcm.py", "test_anything")
