"""The `vision-agents` command."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys

from vision_agents import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vision-agents", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vision-agents {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="start a call on this machine, print its join link and run an agent in it"
    )
    demo.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve the call on (default 127.0.0.1; other addresses use HTTPS)",
    )
    demo.add_argument("--port", type=int, default=8910, help="port (0: any free port)")
    demo.add_argument(
        "--fps", type=float, default=2.0, help="video frames a second sent to the model"
    )
    demo.add_argument(
        "--model",
        choices=["auto", "gemini", "openai", "offline"],
        default="auto",
        help="which model to use (auto: Gemini, then OpenAI, by API key, else offline)",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument("--no-browser", action="store_true", help="only print the join link")
    demo.add_argument(
        "--edge",
        choices=["webrtc", "janus"],
        default="webrtc",
        help="webrtc: the embedded call server (default); janus: a Janus SFU at --janus-url "
        "(its secrets from VISION_AGENTS_JANUS_TOKEN_SECRET and VISION_AGENTS_JANUS_ADMIN_KEY; "
        "the page is served on --host/--port)",
    )
    demo.add_argument("--janus-url", default="ws://127.0.0.1:8188", help="Janus's WebSocket API")
    demo.add_argument("-v", "--verbose", action="store_true")

    add_serve_parser(sub)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "demo":
        if args.duration is not None and args.duration <= 0:
            parser.error(f"--duration must be positive, got {args.duration}")
        from vision_agents.core.errors import ModelNotAvailableError
        from vision_agents.demo import run_demo

        janus = None
        if args.edge == "janus":
            from vision_agents.demo import JanusOptions

            try:
                janus = JanusOptions.from_env(args.janus_url)
            except ValueError as exc:
                parser.error(str(exc))
        try:
            return asyncio.run(
                run_demo(
                    janus=janus,
                    host=args.host,
                    port=args.port,
                    fps=args.fps,
                    duration=args.duration,
                    open_browser=not args.no_browser,
                    prefer=args.model,
                )
            )
        except KeyboardInterrupt:
            # asyncio.run has cancelled the demo, which closed the agent and the call server.
            print("demo stopped", flush=True)
            return 0
        except ModelNotAvailableError as exc:  # expected on an incomplete install: no traceback
            print(f"vision-agents demo: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            print(
                f"vision-agents demo: port {args.port} on {args.host} is in use; "
                "pass --port 0 for any free port, or another port",
                file=sys.stderr,
            )
            return 1
    if args.command == "serve":
        return run_serve(args, parser)
    return 2


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run agents as a service: a sessions API that starts an agent in a call on request",
        description="Serve the sessions API (docs/server.md). Every route but /health, /ready "
        "and /metrics needs 'Authorization: Bearer <token>', the token from "
        "VISION_AGENTS_API_TOKEN (or --api-token).",
    )
    serve.add_argument(
        "factory", help="MODULE:FUNCTION that takes a SessionRequest, returns an Agent"
    )
    serve.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="API port (default 8080; 0: any)")
    serve.add_argument("--call-host", default=None, help="call servers' address (default: --host)")
    serve.add_argument(
        "--api-token",
        default=None,
        help="bearer token (prefer VISION_AGENTS_API_TOKEN: "
        "command lines are visible to other users)",
    )
    serve.add_argument("--max-sessions", type=int, default=4, help="per node (default 4)")
    serve.add_argument("--max-sessions-per-call", type=int, default=1, help="default 1")
    serve.add_argument(
        "--max-duration", type=float, default=3600.0, help="seconds a session may last"
    )
    serve.add_argument(
        "--empty-timeout",
        type=float,
        default=60.0,
        help="leave after the call has had no participant this many seconds",
    )
    serve.add_argument("--prewarm", type=int, default=1, help="idle worker processes kept ready")
    serve.add_argument(
        "--no-fork-workers",
        dest="fork_workers",
        action="store_false",
        help="start each worker from scratch instead of forking it from an imported one",
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="on SIGTERM, seconds sessions may go on before their agents are told to leave",
    )
    serve.add_argument(
        "--unresponsive-timeout",
        type=float,
        default=5.0,
        help="kill a session whose process sent nothing this many seconds (a blocked loop)",
    )
    serve.add_argument(
        "--max-session-memory",
        type=float,
        default=None,
        metavar="MB",
        help="kill a session whose process grows past this many MB (default: no limit)",
    )
    serve.add_argument(
        "--max-cpu",
        type=_limit,
        default=85.0,
        metavar="PERCENT|off",
        help="refuse new sessions while the machine's CPU use is at or above this (default 85)",
    )
    serve.add_argument(
        "--max-loop-lag",
        type=_limit,
        default=50.0,
        metavar="MS|off",
        help="refuse new sessions while a running session's event loop is this late "
        "(90th percentile over a second; default 50)",
    )
    serve.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="join a fleet of nodes coordinated through this Redis (redis://host:6379/0; "
        "docs/scaling.md)",
    )
    serve.add_argument("--node-id", default=None, help="this node's name in the fleet")
    serve.add_argument(
        "--advertise-url",
        default=None,
        help="where other nodes reach this node's API (default: http://HOST:PORT)",
    )
    serve.add_argument("-v", "--verbose", action="store_true")


def _limit(text: str) -> float | None:
    """A positive number, or ``off`` for no limit."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None


def run_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from vision_agents.server import ServerConfig, serve

    config = ServerConfig(
        factory=args.factory,
        host=args.host,
        port=args.port,
        call_host=args.call_host,
        api_token=args.api_token,
        max_sessions=args.max_sessions,
        max_sessions_per_call=args.max_sessions_per_call,
        max_duration_s=args.max_duration,
        empty_timeout_s=args.empty_timeout,
        prewarm=args.prewarm,
        fork_workers=args.fork_workers,
        drain_timeout_s=args.drain_timeout,
        unresponsive_s=args.unresponsive_timeout,
        max_session_memory_mb=args.max_session_memory,
        max_cpu_percent=args.max_cpu,
        max_loop_lag_ms=args.max_loop_lag,
        redis_url=args.redis,
        node_id=args.node_id,
        advertise_url=args.advertise_url,
    )
    try:
        config.check()
    except ValueError as exc:
        parser.error(str(exc))
    if args.verbose:
        os.environ["VISION_AGENTS_LOG_LEVEL"] = "DEBUG"
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
