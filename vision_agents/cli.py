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

    demo = sub.add_parser("demo", help="run an agent in a call and show what it sees and hears")
    demo.add_argument(
        "--video", help="a media file to play as the participant (default: made on the spot)"
    )
    demo.add_argument("--fps", type=float, default=2.0, help="frames a second sent to the model")
    demo.add_argument("--out", default="demo_output", help="folder for the agent's reply audio")
    demo.add_argument("-v", "--verbose", action="store_true")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "demo":
        from pathlib import Path

        from vision_agents.demo import run_demo

        Path(args.out).mkdir(parents=True, exist_ok=True)

        return asyncio.run(run_demo(video=args.video, fps=args.fps, out_dir=args.out))
    return 2


if __name__ == "__main__":
    sys.exit(main())
