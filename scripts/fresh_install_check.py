"""What a new user does, checked end to end: a fresh virtualenv, the README's install command,
``python -m vision_agents demo`` with its link opened in headless Chromium, then every example
as its docstring says. The demo and the examples run with the network cut: a network
namespace that has only loopback (``unshare -n``, then ``ip link set lo up``).

    python scripts/fresh_install_check.py [--demo-seconds 20] [--workdir DIR] [--keep]

Run it with the project's dev environment (``bash scripts/test.sh`` installs it): playwright
drives Debian's chromium from here, while the demo and the examples run with the fresh
virtualenv's python only. The install needs the package registry; the rest needs root for
``unshare -n`` (as in CI). It ends with a line ``fresh-install: N passed, N failed``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SERVERS = "local protocol servers"


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float
    detail: str


def readme_install_command() -> str:
    """The install half of the README's first command (``pip install ... && python -m ...``)."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^(pip install [^\n]*?)\s+&&\s+python -m vision_agents demo", text, re.M)
    if match is None:
        raise SystemExit("README.md has no `pip install ... && python -m vision_agents demo` line")
    return match.group(1)


def copy_checkout(dest: Path) -> None:
    """The files a clone has (tracked, plus new ones not ignored), symlinks kept as links."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def fresh_environment(venv: Path) -> dict[str, str]:
    """A new user's shell: the virtualenv first on PATH, no keys, no display, no PYTHONPATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and k not in ("PYTHONPATH", "DISPLAY", "WAYLAND_DISPLAY")
    }
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def install(workdir: Path) -> Result:
    started = time.monotonic()
    src, venv = workdir / "src", workdir / "venv"
    copy_checkout(src)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    command = readme_install_command()
    print(f"== in a fresh virtualenv: {command}", flush=True)
    done = subprocess.run(
        ["bash", "-c", f"python -m pip install -q --disable-pip-version-check {command[12:]}"],
        cwd=src,
        env=fresh_environment(venv),
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return Result("install", False, seconds, done.stderr[-3000:])
    return Result("install", True, seconds, command)


# -- the offline phase: runs inside `unshare -n` ---------------------------------------------


async def _run(
    argv: list[str], env: dict[str, str], cwd: Path, limit_s: float
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit_s)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        return -9, out.decode(), err.decode() + f"\n(killed after {limit_s:.0f} s)"
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _line_starting(stream: asyncio.StreamReader, prefix: str, within: float) -> list[str]:
    """Lines read until one starts with ``prefix`` (which is last)."""
    lines: list[str] = []
    deadline = time.monotonic() + within
    while not lines or not lines[-1].startswith(prefix):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no line starting {prefix!r} within {within:.0f} s: {lines}")
        raw = await asyncio.wait_for(stream.readline(), left)
        if not raw:
            raise AssertionError(f"the program ended before a line starting {prefix!r}: {lines}")
        lines.append(raw.decode().rstrip("\n"))
        print(f"   | {lines[-1]}", flush=True)
    return lines


async def _interrupt(process: asyncio.subprocess.Process, within: float) -> tuple[int, str, str]:
    """Ctrl-C, as a user would press it; the rest of its output."""
    process.send_signal(signal.SIGINT)
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise AssertionError(f"still running {within:.0f} s after Ctrl-C") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Output:
    """Reads a child's stdout and stderr to the end (so no pipe fills up), echoing stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.out: list[str] = []
        self.err: list[str] = []
        self.changed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._read(process.stdout, self.out, echo=True)),
            asyncio.create_task(self._read(process.stderr, self.err, echo=False)),
        ]

    async def _read(self, stream: asyncio.StreamReader, into: list[str], *, echo: bool) -> None:
        while raw := await stream.readline():
            into.append(raw.decode().rstrip("\n"))
            if echo:
                print(f"   | {into[-1]}", flush=True)
            self.changed.set()

    async def line_starting(self, prefix: str, within: float) -> str:
        deadline = time.monotonic() + within
        while True:
            found = next((line for line in self.out if line.startswith(prefix)), None)
            if found is not None:
                return found
            if all(t.done() for t in self._tasks):
                raise AssertionError(f"the program ended before {prefix!r}: {self.err[-20:]}")
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line starting {prefix!r} within {within:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def close(self) -> None:
        await asyncio.gather(*self._tasks)


async def check_demo(src: Path, env: dict[str, str], seconds: float, shots: Path) -> str:
    """The demo's link in Chromium: the agent's video frames and voice reach the page."""
    sys.path.insert(0, str(ROOT))
    from playwright.async_api import async_playwright

    from tests.browser.chromium import launch
    from tests.browser.page import START_AUDIO_CAPTURE, TAKE_AUDIO, frames_decoded
    from tests.browser.waiting import eventually

    process = await asyncio.create_subprocess_exec(
        "python",
        "-m",
        "vision_agents",
        "demo",
        "--no-browser",
        "--port",
        "0",
        cwd=src,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output = Output(process)
    try:
        url = (await output.line_starting("join the call: ", 180)).removeprefix("join the call: ")
        async with async_playwright() as pw:
            browser = await launch(pw, None, None)  # Chromium's own fake camera and mic
            try:
                page = await browser.new_page(viewport={"width": 1100, "height": 620})
                opened = time.monotonic()
                await page.goto(url)

                async def agent_seat() -> bool:
                    return bool(await page.evaluate("() => !!(window.vaCall && vaCall.slots[0])"))

                await eventually(agent_seat, 30, "the agent's seat in the page")
                await page.evaluate(START_AUDIO_CAPTURE, 0)
                heard = samples = 0
                peak = 0.0
                # The demo runs for its time while the page collects the agent's audio; if the
                # agent has not been heard by then (a slow machine), up to 30 s more.
                while (elapsed := time.monotonic() - opened) < seconds or (
                    heard < 8000 and elapsed < seconds + 30
                ):
                    await asyncio.sleep(1.0)
                    captured = await page.evaluate(TAKE_AUDIO)
                    samples += len(captured)
                    peak = max([peak, *(abs(x) for x in captured)])
                    heard += sum(1 for x in captured if abs(x) > 0.05)
                frames = await frames_decoded(page, 0)
                await page.screenshot(path=str(shots))
                error = await page.evaluate("vaCall.error")
            finally:
                await browser.close()
        process.send_signal(signal.SIGINT)  # Ctrl-C, as a user would press it
        try:
            code = await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            raise AssertionError("the demo still ran 30 s after Ctrl-C") from None
        await output.close()
        err = "\n".join(output.err)
        assert error is None, f"the page shows an error: {error}"
        assert frames >= 5 * seconds / 2, f"the page decoded {frames} agent video frames"
        assert heard >= 8000, (
            f"the page heard {heard / 16000:.2f} s of agent voice "
            f"({samples / 16000:.1f} s captured, peak {peak:.3f})"
        )
        assert any(line.startswith("agent says: ") for line in output.out), "no agent speech"
        assert code == 0, f"exit code {code} after Ctrl-C: {err[-2000:]}"
        assert "Traceback" not in err, err[-3000:]
        assert output.out[-1] == "demo stopped", output.out[-5:]
        return (
            f"in {elapsed:.0f} s the page decoded {frames} frames of agent video and heard "
            f"{heard / 16000:.1f} s of its voice (peak {peak:.2f}); Ctrl-C: exit 0"
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def check_video_call(src: Path, env: dict[str, str]) -> str:
    """examples/video_call/video_call.py with no key: serves the call until Ctrl-C."""
    process = await asyncio.create_subprocess_exec(
        "python",
        "examples/video_call/video_call.py",
        cwd=src,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = await _line_starting(process.stdout, "Join the call: ", 60)
        url = lines[-1].split(": ", 1)[1]
        host, port = url.split("/")[2].split(":")
        with socket.create_connection((host, int(port)), timeout=5):
            pass  # the call server is up
        code, _out, err = await _interrupt(process, 30)
        assert code == 0 and "Traceback" not in err, (code, err[-2000:])
        return "the call server answered; Ctrl-C: exit 0"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def check_agent_server(src: Path, env: dict[str, str]) -> str:
    """examples/agent_server as its docstring says: serve, POST /sessions (then DELETE it),
    then Ctrl-C."""
    import aiohttp

    token = "fresh-install-check-token"
    process = await asyncio.create_subprocess_exec(
        "vision-agents",
        "serve",
        "examples.agent_server.app:create_agent",
        "--port",
        "8080",
        cwd=src,
        env={**env, "VISION_AGENTS_API_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output = Output(process)
    try:
        line = await output.line_starting("vision-agents serve: listening on ", 120)
        base = line.rsplit(" ", 1)[1]
        async with aiohttp.ClientSession() as http:
            # As a load balancer would: a node refuses while this machine's CPU is busy (its
            # admission control, 503 "overloaded"), so ask when /ready says it takes sessions.
            deadline = time.monotonic() + 90
            while True:
                async with http.get(f"{base}/ready") as response:
                    ready = response.status == 200
                if ready:
                    async with http.post(
                        f"{base}/sessions",
                        json={"call_id": "support-1"},
                        headers={"Authorization": f"Bearer {token}"},
                    ) as response:
                        body = await response.json()
                    busy = response.status == 503 and body.get("reason") == "overloaded"
                    if not busy or time.monotonic() > deadline:
                        break
                elif time.monotonic() > deadline:
                    raise AssertionError("/ready did not say 200 within 90 s")
                await asyncio.sleep(0.5)
            assert response.status == 201, (response.status, body)
            assert str(body.get("join_url", "")).startswith("http"), body
            # End the session (else Ctrl-C lets it run for its drain time, by design).
            async with http.delete(
                f"{base}/sessions/{body['session_id']}",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 204, response.status
        process.send_signal(signal.SIGINT)
        try:
            code = await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            raise AssertionError("the server still ran 60 s after Ctrl-C") from None
        await output.close()
        err = "\n".join(output.err)
        assert code == 0 and "Traceback" not in err, (code, err[-2000:])
        return "POST /sessions: 201 with a join link; DELETE: 204; Ctrl-C: exit 0"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def check_output(
    argv: list[str], src: Path, env: dict[str, str], expect: list[str], limit_s: float = 120
) -> str:
    code, out, err = await _run(argv, env, src, limit_s)
    for line in out.splitlines():
        print(f"   | {line}", flush=True)
    assert code == 0, f"exit code {code}: {err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    missing = [e for e in expect if e not in out]
    assert not missing, f"missing {missing} in: {out[-2000:]}"
    return f"printed {expect}"


async def start_local_servers(
    src: Path, env: dict[str, str], workdir: Path
) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    process = await asyncio.create_subprocess_exec(
        "python",
        "-m",
        "vision_agents.testing.serve",
        "--ca-file",
        str(workdir / "local-ca.pem"),
        cwd=src,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = await _line_starting(process.stdout, "ready", 60)
    pairs = dict(line.split("=", 1) for line in lines if "=" in line)
    return process, {**env, **pairs}


async def offline_checks(workdir: Path, demo_seconds: float, only: str = "") -> list[Result]:
    src, venv = workdir / "src", workdir / "venv"
    env = fresh_environment(venv)
    media = workdir / "media"
    media.mkdir(exist_ok=True)
    results: list[Result] = []

    async def step(name: str, check: Callable[[], Awaitable[str]]) -> None:
        if only not in name:
            return
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            detail = await check()
            results.append(Result(name, True, time.monotonic() - started, detail))
        except Exception as exc:
            results.append(
                Result(name, False, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
            )
        print(f"   {'ok' if results[-1].ok else 'FAILED'}: {results[-1].detail}", flush=True)

    await step(
        "python -m vision_agents demo, link opened in Chromium",
        lambda: check_demo(src, env, demo_seconds, workdir / "demo.png"),
    )
    await step(
        "examples/offline_agent/main.py",
        lambda: check_output(
            ["python", "examples/offline_agent/main.py"], src, env, ["agent: You said:"]
        ),
    )
    await step(
        "examples/mcp_tools/main.py (a stdio MCP server's tool)",
        lambda: check_output(
            ["python", "examples/mcp_tools/main.py"],
            src,
            env,
            ['call-1 -> {"result": "snow', 'call-2 -> {"error": "MCP server \'weather\''],
        ),
    )
    await step(
        "examples/detection_voice/doorcam.py",
        lambda: check_output(
            ["python", "examples/detection_voice/doorcam.py"],
            src,
            env,
            ["agent spoke: ", "what_is_in_view -> "],
        ),
    )
    make_media = (
        "from pathlib import Path; import sys\n"
        "from vision_agents.testing import make_test_video, synthesize_speech, write_wav\n"
        "folder = Path(sys.argv[1])\n"
        "make_test_video(folder / 'clip.mkv', seconds=3.0, size=(320, 240))\n"
        "write_wav(folder / 'question.wav', synthesize_speech('What do you see?'))\n"
    )
    await step("examples/webcam_demo.py on files", lambda: _webcam(src, env, media, make_media))
    await step("examples/video_call/video_call.py", lambda: check_video_call(src, env))
    await step(
        "examples/agent_server/app.py (vision-agents serve)", lambda: check_agent_server(src, env)
    )

    servers, with_servers = await start_local_servers(src, env, workdir)
    try:
        await step(
            f"examples/gemini_realtime/main.py against the {LOCAL_SERVERS}",
            lambda: check_output(
                ["python", "examples/gemini_realtime/main.py"],
                src,
                with_servers,
                ["agent: Local Gemini Live server here"],
            ),
        )
        await step(
            f"examples/openai_realtime/openai_agent.py against the {LOCAL_SERVERS}",
            lambda: check_output(
                ["python", "examples/openai_realtime/openai_agent.py"],
                src,
                with_servers,
                ["agent: Local OpenAI Realtime server here."],
            ),
        )
        await step(
            f"examples/xai_realtime/xai_agent.py against the {LOCAL_SERVERS}",
            lambda: check_output(
                ["python", "examples/xai_realtime/xai_agent.py"],
                src,
                with_servers,
                ["agent: Local xAI Grok voice server here."],
            ),
        )
    finally:
        servers.send_signal(signal.SIGTERM)
        await asyncio.wait_for(servers.wait(), 30)
    return results


async def _webcam(src: Path, env: dict[str, str], media: Path, make_media: str) -> str:
    await check_output(["python", "-c", make_media, str(media)], src, env, [], limit_s=60)
    return await check_output(
        [
            "python",
            "examples/webcam_demo.py",
            "--video",
            str(media / "clip.mkv"),
            "--audio",
            str(media / "question.wav"),
            "--speaker",
            "none",
            "--duration",
            "8",
        ],
        src,
        env,
        ["agent says: Hello, I am the offline demo agent", "you said: "],
    )


def loopback_only() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    names = [name for _index, name in socket.if_nameindex()]
    if names != ["lo"]:
        raise SystemExit(f"expected only loopback in this network namespace, found {names}")
    print("== network cut: only loopback (lo) is up", flush=True)


def report(results: list[Result]) -> int:
    print("== fresh install check")
    for r in results:
        print(f"{'PASS' if r.ok else 'FAIL'} {r.seconds:6.1f} s  {r.name}: {r.detail}")
    failed = sum(not r.ok for r in results)
    print(f"fresh-install: {len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def press_ctrl_c_possible() -> None:
    """Started as a background job, this process (and so every child) would ignore SIGINT,
    and Ctrl-C could not be checked; a handler here is reset to the default in each child."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> int:
    press_ctrl_c_possible()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-seconds", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, help="reuse this folder (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--skip-install", action="store_true", help="reuse --workdir's venv")
    parser.add_argument("--only", default="", help="run only the checks whose name has this")
    parser.add_argument("--offline-phase", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.offline_phase:  # inside `unshare -n`: results go back as the report's lines
        loopback_only()
        return report(asyncio.run(offline_checks(args.workdir, args.demo_seconds, args.only)))

    started = time.monotonic()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="va-fresh-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_install:
            installed = install(workdir)
            print(f"   {'ok' if installed.ok else 'FAILED'} in {installed.seconds:.0f} s")
            if not installed.ok:
                return report([installed])
        if shutil.which("unshare") is None:
            print("unshare (util-linux) is missing: cannot cut the network", file=sys.stderr)
            return report([Result("network cut", False, 0.0, "no unshare")])
        done = subprocess.run(
            [
                "unshare",
                "-n",
                "--",
                sys.executable,
                __file__,
                "--offline-phase",
                "--workdir",
                str(workdir),
                "--demo-seconds",
                str(args.demo_seconds),
                "--only",
                args.only,
            ],
            timeout=900,
        )
        print(f"fresh install check took {time.monotonic() - started:.0f} s", flush=True)
        return done.returncode
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
