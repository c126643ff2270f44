#!/usr/bin/env bash
# Installs what the test suite needs, then runs lint, type checks and every test.
# Python packages come from pip; Debian packages (espeak-ng for speech made in tests) are
# installed with apt-get when running as root, otherwise their absence is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(espeak-ng chromium pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins janus libjs-janus-gateway iproute2 redis-server tesseract-ocr tesseract-ocr-eng)
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

# The Ultralytics backend's tests run real YOLO networks on CPU torch. `torch==2.13.0` is
# the local CPU wheel here (any other torch requirement pulls GBs of CUDA). Ultralytics goes
# in without its dependencies: it asks for opencv-python, which would overwrite our
# opencv-python-headless<5. torchvision 0.28.0 (the release for torch 2.13) goes in the same
# way, only because Ultralytics reads its version at import: its CUDA-built ops do not load on
# CPU torch, and neither the backend nor the ONNX export uses them. ~25 s, ~0.8 GB on disk.
echo "== installing CPU torch and Ultralytics for the Ultralytics backend tests"
python -m pip install -q --disable-pip-version-check torch==2.13.0 pyyaml requests psutil
python -m pip install -q --disable-pip-version-check --no-deps \
    torchvision==0.28.0 "ultralytics>=8.4,<8.5" "ultralytics-thop>=2.2"

echo "== ruff"
python -m ruff check .
python -m ruff format --check .
echo "== mypy"
python -m mypy
echo "== pytest"
python -m pytest "$@"
