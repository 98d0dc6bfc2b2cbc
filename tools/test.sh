#!/usr/bin/env bash
# The test command: set up, then every notebook's tests (nbdev_test) and the pytest suite, which also runs
# the papermill chain once on a tiny demo corpus and the wheel check (tests/test_wheel.py: the wheel built from
# this checkout, installed into its own virtualenv without dev packages, runs `cmer run --steps 1-4 --augment` from a folder
# outside the repository). Ends with pytest's "N passed" summary. Everything the tests put in the temporary
# folder (the chapters' examples, pytest's tmp_path) goes into one folder removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/cmer-tests.XXXXXX")"; export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
nbdev_export
if command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet -- cmer; then
  echo "warning: cmer/ differs from the committed package after nbdev_export (notebooks changed without export?)" >&2
fi
start=$(date +%s)
# one notebook at a time: the chapters' run sections share the tiny corpus's output root (data/tiny/out), and two
# chapters running their steps there at once can each find the other's outputs half replaced (e.g. text_embed's
# augmented view appearing or going while 02 re-runs text_aug)
nbdev_test --n_workers "${CMER_TEST_WORKERS:-1}" --timing
echo "nbdev_test: $(( $(date +%s) - start )) s"
pytest -q tests
