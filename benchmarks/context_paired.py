"""Does dialogue context (ModelConfig.context=16) hurt where context carries no signal? PAIRED store (real audio,
faces and transcripts paired by label; its dialogs are random sequences of labels), leave-one-session-out,
audio + video + text, default settings otherwise, context 0 vs 16, two seeds.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/context_paired.py --out /tmp/cmer_paired/out --context 0 16 --seeds 42 1

Writes benchmarks/results/context_paired.json (per fold UA and WA, mean ± sd over folds, per-fold differences)."""
import argparse, json, time
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
from cmer.train import load_data, TrainConfig
from cmer.model import ModelConfig
from cmer.protocols import make_folds
from cmer.evaluate import cross_validate
from cmer.core import atomic_json

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='/tmp/cmer_paired/out'); ap.add_argument('--context', type=int, nargs='+', default=[0, 16])
    ap.add_argument('--seeds', type=int, nargs='+', default=[42, 1])
    ap.add_argument('--json', default=str(Path(__file__).parent/'results'/'context_paired.json'))
    a = ap.parse_args()
    torch.set_num_threads(1)
    data = load_data(a.out); folds = make_folds(data.table, 'loso')
    runs = []
    for seed in a.seeds:
        for k in a.context:
            t0 = time.time()
            res = cross_validate(data, folds, replace(ModelConfig(), context=k), TrainConfig(seed=seed), subsets=False, progress=False)
            ua = [f['ua'] for f in res['folds']]; wa = [f['wa'] for f in res['folds']]
            runs.append(dict(context=k, seed=seed, ua=ua, wa=wa, ua_mean=float(np.mean(ua)), ua_sd=float(np.std(ua, ddof=1)), seconds=round(time.time() - t0, 1)))
            print(json.dumps(runs[-1]))
    atomic_json(a.json, dict(data='PAIRED', store=a.out, protocol='loso', modalities=list(data.modalities), runs=runs))

if __name__ == '__main__': main()
