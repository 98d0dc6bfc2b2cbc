#!/usr/bin/env bash
# The main job: set up, build the SYNTHETIC demo corpus, run the whole notebook chain on it, show result.txt.
# Usage: bash tools/demo.sh [DATA_DIR]   (default data/; outputs in DATA_DIR/out)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
data="${1:-data}"
cmer demo-corpus "$data/demo"
cmer run --corpus "$data/demo" --out "$data/out"
if [ -f "$data/out/results/result.txt" ]; then cat "$data/out/results/result.txt"; fi
