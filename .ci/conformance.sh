#!/usr/bin/env bash
# Conformance suite: our local OpenAI Realtime server driven by other projects' clients
# (OpenAI Agents SDK, LiveKit Agents, Pipecat), each in its own virtualenv. Makes the
# virtualenvs first (idempotent; cached under $PEERS_HOME, default ~/.cache/vision-agents-peers),
# then runs tests/test_conformance.py with skipping turned off: a peer that cannot be set up
# fails the run here. Needs the project installed (scripts/test.sh does that).
set -euo pipefail
cd "$(dirname "$0")/.."

export PEERS_HOME="${PEERS_HOME:-$HOME/.cache/vision-agents-peers}"
echo "== peer virtualenvs under $PEERS_HOME"
bash scripts/conformance/setup.sh
echo "== conformance suite"
VISION_AGENTS_CONFORMANCE=required python -m pytest -q -rA tests/test_conformance.py
