#!/usr/bin/env bash
# Make docs/designer-unet.png, the README's picture of the designer with the U-Net example open.
# Needs Xvfb (apt-get install xvfb); the designer renders a few frames and saves its own framebuffer.
set -euo pipefail
cd "$(dirname "$0")/.."
display=:97
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
sleep 1
DISPLAY=$display XDG_CONFIG_HOME=$(mktemp -d) netcanvas design examples/unet.graph.yaml --frames 60 \
    --screenshot docs/designer-unet.png
echo "wrote docs/designer-unet.png"
