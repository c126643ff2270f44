"""The `vision-agents` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
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
    demo.add_argument("-v", "--verbose", action="store_true")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "demo":
        if args.duration is not None and args.duration <= 0:
            parser.error(f"--duration must be positive, got {args.duration}")
        from vision_agents.demo import run_demo

        try:
            return asyncio.run(
                run_demo(
                    host=args.host,
                    port=args.port,
                    fps=args.fps,
                    duration=args.duration,
                    open_browser=not args.no_browser,
                    prefer=args.model,
                )
            )
        except KeyboardInterrupt:
            print("demo stopped")
            return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
