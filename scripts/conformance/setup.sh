#!/usr/bin/env bash
# Virtualenvs for the conformance suite (tests/test_conformance.py): realtime clients that
# other projects wrote, each in its own environment outside the repository, because their
# dependencies conflict with ours and with each other. Idempotent: an environment whose
# requirements are already installed is left alone (a stamp file records what was installed).
#   $PEERS_HOME/openai-agents  openai-agents (agents.realtime.OpenAIRealtimeWebSocketModel)
#   $PEERS_HOME/livekit        livekit-agents + OpenAI/Google plugins  } made by
#   $PEERS_HOME/pipecat        pipecat-ai[openai,google]               } benchmarks/peers/setup.sh
# Usage: bash scripts/conformance/setup.sh [openai-agents] [livekit] [pipecat]  (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."

export PEERS_HOME="${PEERS_HOME:-$HOME/.cache/vision-agents-peers}"
PYTHON="${PYTHON:-python3.11}"
OPENAI_AGENTS_SPEC="${OPENAI_AGENTS_SPEC:-openai-agents~=0.24.0}"
export LIVEKIT_VERSION="${LIVEKIT_VERSION:-1.8.9}"
export PIPECAT_VERSION="${PIPECAT_VERSION:-1.14.0}"

stamped() {  # stamped <venv> <spec...>: true when exactly these specs were installed there
    local stamp="$1/.conformance-stamp"
    shift
    [ -x "$(dirname "$stamp")/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$*" ]
}

peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(openai-agents livekit pipecat)
mkdir -p "$PEERS_HOME"
for peer in "${peers[@]}"; do
    case "$peer" in
        openai-agents)
            venv="$PEERS_HOME/openai-agents"
            if ! stamped "$venv" "$OPENAI_AGENTS_SPEC"; then
                [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
                "$venv/bin/python" -m pip install --quiet --upgrade pip
                "$venv/bin/python" -m pip install --quiet "$OPENAI_AGENTS_SPEC"
                echo "$OPENAI_AGENTS_SPEC" >"$venv/.conformance-stamp"
            fi
            echo "openai-agents: $venv/bin/python"
            ;;
        livekit | pipecat)
            # Shared with the reconnect benchmark: same location, same script.
            venv="$PEERS_HOME/$peer"
            version="$LIVEKIT_VERSION"
            [ "$peer" = pipecat ] && version="$PIPECAT_VERSION"
            if ! stamped "$venv" "$peer==$version"; then
                bash benchmarks/peers/setup.sh "$peer"
                echo "$peer==$version" >"$venv/.conformance-stamp"
            fi
            echo "$peer: $venv/bin/python"
            ;;
        *)
            echo "unknown peer: $peer (expected openai-agents, livekit or pipecat)" >&2
            exit 2
            ;;
    esac
done
