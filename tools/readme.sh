#!/usr/bin/env bash
# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which is not installable here).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/jupyter nbconvert --log-level WARN --to markdown --stdout nbs/index.ipynb > README.md.tmp
{ echo "<!-- generated from nbs/index.ipynb by tools/readme.sh: edit the notebook, not this file -->"; echo; sed -e 's#](images/#](nbs/images/#g' -e 's#](\.\./#](#g' README.md.tmp; } > README.md.new   # links are relative to nbs/
rm README.md.tmp && mv README.md.new README.md
