#!/usr/bin/env bash
# Installs what the test suite needs, then runs lint, type checks and every test.
# Python packages come from pip; Debian packages (espeak-ng for speech made in tests) are
# installed with apt-get when running as root, otherwise their absence is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(espeak-ng chromium pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins)
missing=()
for pkg in "${debian_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "== installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "!! missing Debian packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
    fi
fi

echo "== installing vision-agents with every extra and the dev tools"
python -m pip install -q --disable-pip-version-check -e ".[all,dev]"

echo "== ruff"
python -m ruff check .
python -m ruff format --check .
echo "== mypy"
python -m mypy
echo "== pytest"
python -m pytest "$@"
