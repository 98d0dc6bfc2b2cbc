"""How fine the L2 grid of cmer's text branch must be (real IEMOCAP transcripts, issue 18 goal: text with context >= 0.78).

cmer's 'stats' branches choose their L2 penalty on inner folds of the training speakers from `TrainConfig.l2_grid`,
decade steps by default (1e-3 ... 100). On the concatenated MiniLM + mpnet embeddings the inner folds picked 0.1 in four
sessions and 1.0 in one; this asks whether half-decade steps (0.03, 0.3) change the held-out UA, and whether averaging
the probabilities of several training seeds does.

Data: real IEMOCAP transcripts (`iemocap.csv`), 4 classes, leave-one-session-out, 16 previous turns of context
(cmer's defaults, `ModelConfig()`), the same training call as `benchmarks/probes.py`'s text part (`train_model` on the
four training sessions, `predict` on the fifth).

    python benchmarks/text_l2_grid.py [--features minilm+mpnet] [--grid 0.01,0.03,0.1,0.3,1] [--seeds 42,1,2]

Writes benchmarks/results/text_l2_grid.json (one entry per --features, the others kept) and benchmarks/text_l2_grid.md.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
for _k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ.setdefault(_k, '1')
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SESSIONS = ['1', '2', '3', '4', '5']


def run(features:str, grid:tuple, seeds:list[int], work:Path) -> dict:
    "Per session: the held-out UA of each seed with the default grid (first seed) and with `grid`, and of the seeds' mean probabilities."
    import torch
    from cmer.default_model import iemocap_text_table, DEFAULT_CLASSES
    from cmer.train import make_data, TrainConfig, train_model, predict
    from cmer.model import ModelConfig
    from cmer.metrics import emotion_metrics
    from probes import text_embeddings
    torch.set_num_threads(1)
    table = iemocap_text_table()                          # iemocap.csv, 4 classes, transcripts that are not empty (as probes.py)
    data = make_data(table, {'text': text_embeddings(work, table, features)}, DEFAULT_CLASSES)
    y, sess = data.labels, data.table.session.astype(str).to_numpy()
    R = dict(default=dict(grid=list(TrainConfig().l2_grid), ua=[], l2=[]), fine=dict(grid=list(grid), ua=[], l2=[], ua_seeds=[], ua_mean_probs=[]), seconds=0.0)
    t0 = time.perf_counter()
    for s in SESSIONS:
        te, tr = np.flatnonzero(sess == s), np.flatnonzero(sess != s)
        ua = lambda p: float(emotion_metrics(y[te], p.argmax(1))['ua'])
        r = train_model(data, tr, ModelConfig(), TrainConfig(seed=seeds[0]), progress=False)
        R['default']['ua'].append(ua(predict(r.model, data, te)['prob'])); R['default']['l2'].append(r.tuning['l2']['text'])
        P = []
        for sd in seeds:
            r = train_model(data, tr, ModelConfig(), TrainConfig(l2_grid=tuple(grid), seed=sd), progress=False)
            P.append(predict(r.model, data, te)['prob'])
            if sd == seeds[0]: R['fine']['ua'].append(ua(P[-1])); R['fine']['l2'].append(r.tuning['l2']['text'])
        R['fine']['ua_seeds'].append([ua(p) for p in P]); R['fine']['ua_mean_probs'].append(ua(np.mean(P, 0)))
        print(f"session {s}: default grid {R['default']['ua'][-1]:.4f} (L2 {R['default']['l2'][-1]:g}), grid {grid} "
              f"{R['fine']['ua'][-1]:.4f} (L2 {R['fine']['l2'][-1]:g}), seeds {R['fine']['ua_seeds'][-1]}, mean of seeds {R['fine']['ua_mean_probs'][-1]:.4f}", flush=True)
    R['seconds'] = round(time.perf_counter() - t0, 1)
    return R


def ms(v): v = np.asarray(v, float); return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def write_md(J:dict, path:Path):
    L = ["# The text branch's L2 grid (IEMOCAP transcripts, real)", "", __doc__.split('\n\n')[1].strip(), "",
         "Regenerate with `python benchmarks/text_l2_grid.py`. UA per held-out session (1-5), mean ± sd over sessions.", "",
         "| features | setting | L2 chosen per session | UA per session | mean ± sd |", "|---|---|---|---|---|"]
    g = lambda vs: ', '.join(f'{v:g}' for v in vs)
    for f, R in J['runs'].items():
        D, F = R['default'], R['fine']
        for setting, l2, ua in ((f"default grid ({g(D['grid'])}), seed {R['seeds'][0]}", g(D['l2']), D['ua']),
                                (f"grid {g(F['grid'])}, seed {R['seeds'][0]}", g(F['l2']), F['ua']),
                                (f"same grid, probabilities of seeds {', '.join(map(str, R['seeds']))} averaged", '', F['ua_mean_probs'])):
            L.append(f"| {f} | {setting} | {l2} | {' / '.join(f'{v:.3f}' for v in ua)} | {ms(ua)} |")
    L.append("")
    for f, R in J['runs'].items():
        d = np.asarray(R['fine']['ua']) - np.asarray(R['default']['ua']); e = np.asarray(R['fine']['ua_mean_probs']) - np.asarray(R['fine']['ua'])
        L.append(f"- {f}: the finer grid {d.mean():+.3f} (better in {(d > 0.001).sum()} of {len(d)} sessions, worse in {(d < -0.001).sum()}; "
                 f"per session {' / '.join(f'{v:+.3f}' for v in d)}); averaging the seeds {e.mean():+.3f}.")
    L += ["", "Per run: " + '; '.join(f"{f}: {'?' if R['seconds'] is None else format(R['seconds'], '.0f')} s on {R['machine']} ({R['when']}){', ' + R['note'] if R.get('note') else ''}" for f, R in J['runs'].items()) + "."]
    path.write_text('\n'.join(L) + '\n')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--features', default='minilm+mpnet'); ap.add_argument('--grid', default='0.01,0.03,0.1,0.3,1')
    ap.add_argument('--seeds', default='42,1,2'); ap.add_argument('--work', default='/tmp/cmer_bench')
    ap.add_argument('--results', default=str(HERE/'results'/'text_l2_grid.json')); ap.add_argument('--md', default=str(HERE/'text_l2_grid.md'))
    a = ap.parse_args(argv)
    from cmer.core import atomic_json
    grid = tuple(float(v) for v in a.grid.split(',')); seeds = [int(s) for s in a.seeds.split(',')]
    R = run(a.features, grid, seeds, Path(a.work))
    R.update(seeds=seeds, machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}", when=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    path = Path(a.results)
    J = json.loads(path.read_text()) if path.exists() else dict(data='IEMOCAP transcripts (real), 4 classes, leave-one-session-out, past context', runs={})
    J['runs'][a.features] = R
    atomic_json(path, J); write_md(J, Path(a.md))
    print(Path(a.md).read_text())


if __name__ == '__main__':
    main()
