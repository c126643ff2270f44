#!/usr/bin/env bash
# Virtualenvs for the peer SDKs that benchmarks/reconnect.py drives side by side with ours.
# They live outside the repository (their dependencies conflict with ours and each other):
#   $PEERS_HOME/livekit  livekit-agents + its OpenAI and Google plugins
#   $PEERS_HOME/pipecat  pipecat-ai[openai,google] (pins google-genai<3)
# Usage: bash benchmarks/peers/setup.sh [livekit] [pipecat]   (default: both)
set -euo pipefail

PEERS_HOME="${PEERS_HOME:-$HOME/.cache/vision-agents-peers}"
PYTHON="${PYTHON:-python3.11}"
LIVEKIT_VERSION="${LIVEKIT_VERSION:-1.8.9}"
PIPECAT_VERSION="${PIPECAT_VERSION:-1.14.0}"

make_venv() {
    local name="$1"
    shift
    local venv="$PEERS_HOME/$name"
    if [ ! -x "$venv/bin/python" ]; then
        "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
    fi
    "$venv/bin/python" -m pip install --quiet "$@"
    echo "$name: $venv/bin/python"
}

peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(livekit pipecat)
for peer in "${peers[@]}"; do
    case "$peer" in
        livekit)
            make_venv livekit "livekit-agents==$LIVEKIT_VERSION" \
                "livekit-plugins-openai==$LIVEKIT_VERSION" "livekit-plugins-google==$LIVEKIT_VERSION"
            ;;
        pipecat)
            make_venv pipecat "pipecat-ai[openai,google]==$PIPECAT_VERSION"
            ;;
        *)
            echo "unknown peer: $peer (expected livekit or pipecat)" >&2
            exit 2
            ;;
    esac
done
