#!/usr/bin/env bash
# GPU check (issue 12 item 2): run the cmer chain on the SYNTHETIC demo corpus with CMER_DEVICE=cuda and print
# what torch and CTranslate2 see, the GPU's name, and each step's time and device (from chain.json and the manifests).
#
#   bash benchmarks/gpu_check.sh [OUT]          # OUT defaults to /tmp/cmer-gpu-check
#   CPU_TOO=1 bash benchmarks/gpu_check.sh      # also run the same chain with CMER_DEVICE=cpu, for the comparison
#   SESSIONS=5 PER_SESSION=40 ...               # demo corpus size (default: the 200-utterance demo corpus)
#
# Needs a CUDA build of torch (the pinned torch==2.13.0 here is a CPU build: it sees no GPU, and the script stops
# with exit status 2 saying so) and a CTranslate2 wheel with CUDA (the PyPI Linux wheels have it) for Whisper.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CMER=${CMER:-.venv/bin/cmer}
OUT=${1:-/tmp/cmer-gpu-check}
SESSIONS=${SESSIONS:-5}
PER_SESSION=${PER_SESSION:-40}
mkdir -p "$OUT"

echo "== devices"
"$PY" - <<'EOF'
import sys, torch
print(f"torch {torch.__version__}: cuda available {torch.cuda.is_available()}, {torch.cuda.device_count()} device(s), "
      f"built with CUDA {torch.version.cuda}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {torch.cuda.get_device_name(i)}, {p.total_memory / 2**30:.1f} GiB")
try:
    import ctranslate2
    print(f"ctranslate2 {ctranslate2.__version__}: {ctranslate2.get_cuda_device_count()} CUDA device(s) (Whisper)")
except Exception as e: print(f"ctranslate2: {type(e).__name__}: {e}")
from cmer.core import resolve_device
print(f"cmer resolve_device('auto') -> {resolve_device('auto')}")
if not torch.cuda.is_available():
    print("gpu_check: no CUDA GPU visible to torch (a CPU build of torch, or no driver): nothing to check on this machine", file=sys.stderr)
    sys.exit(2)
EOF

echo "== demo corpus ($SESSIONS x $PER_SESSION utterances, SYNTHETIC)"
"$CMER" demo-corpus "$OUT/corpus" --sessions "$SESSIONS" --per-session "$PER_SESSION" --jobs "$(nproc)"

report() {   # print each step's status, seconds and device from chain.json and the step manifests
"$PY" - "$1" "$2" <<'EOF'
import json, sys
from pathlib import Path
out, label = Path(sys.argv[1]), sys.argv[2]
chain = json.loads((out/'chain.json').read_text())
total = 0.0
print(f"-- {label}: {out}")
print(f"{'step':<14}{'status':<9}{'seconds':>9}  device")
for s in chain['steps']:
    m = json.loads((out/s['step']/'manifest.json').read_text()) if (out/s['step']/'manifest.json').exists() else {}
    r = m.get('report', {})
    dev = r.get('device') or r.get('asr_device') or ''
    if r.get('asr_compute_type'): dev += f" ({r['asr_compute_type']})"
    total += s['seconds']
    print(f"{s['step']:<14}{s['status']:<9}{s['seconds']:>9.2f}  {dev}")
print(f"{'total':<23}{total:>9.2f}")
EOF
}

echo "== chain with CMER_DEVICE=cuda"
CMER_DEVICE=cuda "$CMER" run --corpus "$OUT/corpus" --out "$OUT/out-cuda" --force
report "$OUT/out-cuda" "CMER_DEVICE=cuda"

if [ "${CPU_TOO:-0}" = 1 ]; then
  echo "== chain with CMER_DEVICE=cpu"
  CMER_DEVICE=cpu "$CMER" run --corpus "$OUT/corpus" --out "$OUT/out-cpu" --force
  report "$OUT/out-cpu" "CMER_DEVICE=cpu"
fi
