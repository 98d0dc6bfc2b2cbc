#!/usr/bin/env python
"""The text-only chain on the real `iemocap.csv` (issue 20): the work the default model reads, against the whole workload.

    python benchmarks/text_chain.py [--csv PATH] [--out /tmp/cmer-text-chain] [--json PATH]

Data: real (the original's `iemocap.csv`: 5,531 IEMOCAP transcripts and labels, `$CMER_DATA` or ../shared/data).
Two `cmer run`s into fresh output roots, both with `--checks never` (the chapters' checks are a fixed cost):

- `all`: every text step the chain had before issue 20 ran, done as it was then: `corpus text_aug text_embed
  evaluate` with `--augment` (back-translation) and `-p text_embed:augmented=yes` (the back-translated view
  embedded), the evaluation's folds one after the other (`CMER_JOBS=1`);
- `needed`: `corpus text_embed evaluate`, what the default model reads (no back-translated view: `w_aug = 0`), the
  folds in 2 worker processes (`CMER_JOBS=2`).

Both evaluate the same model on the same folds, so their predictions must be identical (checked). Prints and
writes per-step seconds (the chain's wall seconds per step, kernel start included), the speed-up, and the check.
Seconds on a shared 2-core machine are upper bounds; the machine's 1-minute load is recorded.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd

HERE = Path(__file__).resolve().parent
CMER = str(Path(sys.executable).parent/'cmer')


def run(csv:Path, out:Path, steps:list, extra:list, jobs:int) -> dict:
    if out.exists(): shutil.rmtree(out)
    env = dict(os.environ, CMER_JOBS=str(jobs))
    load0 = os.getloadavg()[0]; t0 = time.perf_counter()
    p = subprocess.run([CMER, 'run', '--corpus', str(csv), '--out', str(out), '--steps', *steps, '--checks', 'never', *extra],
                       env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode: raise SystemExit(f"cmer run failed ({p.returncode}):\n{p.stderr[-3000:]}")
    chain = json.loads((out/'chain.json').read_text())
    steps_s = {s['step']: round(s['seconds'], 1) for s in chain['steps']}
    return dict(steps=steps, extra=extra, jobs=jobs, wall_seconds=round(wall, 1), step_seconds=steps_s,
                load_1min=[round(load0, 2), round(os.getloadavg()[0], 2)])


def main(argv=None):
    from cmer.core import get_config
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--csv', default=None, help='the flat iemocap.csv (default: <data dir>/iemocap.csv)')
    ap.add_argument('--out', default=os.path.join(tempfile.gettempdir(), 'cmer-text-chain'))
    ap.add_argument('--json', default=str(HERE/'results'/'text_chain.json'))
    a = ap.parse_args(argv)
    csv = Path(a.csv) if a.csv else get_config().data_dir/'iemocap.csv'
    if not csv.exists(): raise SystemExit(f"{csv}: not found; give --csv or set CMER_DATA to the folder holding iemocap.csv")
    work = Path(a.out); work.mkdir(parents=True, exist_ok=True)
    res = dict(data='real: iemocap.csv (IEMOCAP transcripts and labels)', csv=str(csv), machine=f"{os.cpu_count()} CPUs",
               started=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    res['all'] = run(csv, work/'all', ['corpus', 'text_aug', 'text_embed', 'evaluate'], ['--augment', '-p', 'text_embed:augmented=yes'], 1)
    print('all:', json.dumps(res['all']), flush=True)
    res['needed'] = run(csv, work/'needed', ['corpus', 'text_embed', 'evaluate'], [], 2)
    print('needed:', json.dumps(res['needed']), flush=True)
    pa, pn = (pd.read_csv(work/k/'results'/'predictions.csv') for k in ('all', 'needed'))
    res['same_predictions'] = bool(pa.equals(pn))
    ra, rn = (json.loads((work/k/'results'/'results.json').read_text()) for k in ('all', 'needed'))
    ua = lambda r: r['summary']['ua']['mean']
    res['ua'] = dict(all=ua(ra), needed=ua(rn))
    ta, tn = sum(res['all']['step_seconds'].values()), sum(res['needed']['step_seconds'].values())
    res['speedup'] = round(ta / tn, 2); res['goal'] = '>= 2x faster, same result'
    res['met'] = res['speedup'] >= 2 and res['same_predictions']
    res['finished'] = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    p = Path(a.json); p.parent.mkdir(parents=True, exist_ok=True); tmp = p.with_suffix('.tmp')
    tmp.write_text(json.dumps(res, indent=1) + '\n'); os.replace(tmp, p)
    print(f"all {ta:.0f} s, needed {tn:.0f} s: {res['speedup']}x; same predictions: {res['same_predictions']}; "
          f"{'MET' if res['met'] else 'MISSED'}")


if __name__ == '__main__':
    main()
