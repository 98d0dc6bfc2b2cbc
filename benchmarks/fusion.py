"""Does fusion work? One table per corpus (issue 11, item 5).

For each corpus, leave-one-session-out UA (mean ± sample std over the folds) of: each modality's own model
trained alone; two simple fusions of the same features computed in the same run (late: the product of the
unimodal models' probabilities; early: logistic regression on the concatenated pooled features, C chosen on
an inner grouped split of the training sessions); the fused cmer model; the fused model tested on each single
modality. Everything goes through `cmer.evaluate.cross_validate(..., unimodal=True)`, the code the evaluate
step runs, with the library defaults (`ModelConfig()`, `TrainConfig()`).

Corpora (feature stores written by the chain, read with `cmer.train.load_data`):
- paired:          PAIRED (EmoDB speech + IEMOCAP transcripts + FER2013 faces paired by label), MFCC audio
- paired_whisper:  the same PAIRED store with Whisper encoder audio features (features/whisper.npz)
- synthetic:       the SYNTHETIC demo corpus (`cmer demo-corpus` + `cmer run`)

    python benchmarks/fusion.py [--paired OUT] [--synthetic OUT] [--only paired,synthetic]

Each corpus' entry of results/fusion.json is replaced when it is re-run; the others are kept, and fusion.md is
rewritten from the whole file.
"""
from __future__ import annotations
import argparse, json, os, platform, time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = {
    'paired': 'PAIRED (real signals paired by label; the modalities are independent given the label; not a real multimodal recording), MFCC audio',
    'paired_whisper': 'PAIRED (real signals paired by label; the modalities are independent given the label; not a real multimodal recording), Whisper encoder audio',
    'synthetic': 'SYNTHETIC demo corpus (espeak-ng speech, rendered FER2013 faces, real IEMOCAP transcripts; shows what the model does with a planted signal)',
    'paired_proxy': 'PAIRED-like proxy (EmoDB MFCC + IEMOCAP MiniLM + FER2013 face embeddings paired by label, built directly, not by the chain); development only',
}
AUDIO = {'paired': 'mfcc', 'paired_whisper': 'whisper', 'synthetic': 'mfcc', 'paired_proxy': 'mfcc'}


def run_corpus(name:str, out:str, log=print) -> dict:
    "Cross-validate the fusion table on the store under `out`."
    import numpy as np, torch
    from cmer.model import ModelConfig
    from cmer.train import TrainConfig, load_data, make_data
    from cmer.evaluate import loso_folds, check_folds, cross_validate
    torch.set_num_threads(1)
    if name == 'paired_proxy':
        import pandas as pd
        from cmer.core import load_features
        t = pd.read_csv(Path(out)/'utterances.csv', dtype={'speaker': str})
        data = make_data(t, {n: load_features(Path(out)/f'{n}.npz') for n in ('mfcc', 'frames', 'text')}, ['neu', 'ang', 'sad', 'hap'])
    else: data = load_data(out, audio=AUDIO[name])
    folds = loso_folds(data.table); check_folds(data.table, folds)
    mc, tc = ModelConfig(), TrainConfig()
    t0 = time.perf_counter()
    cv = cross_validate(data, folds, mc, tc, unimodal=True, progress=False)
    fs = cv['fusion']
    res = dict(label=LABELS[name], store=str(out), audio_features=AUDIO[name], n_utterances=len(data), n_folds=len(folds),
               modalities=list(data.modalities), dims=data.dims, **fs, seconds=round(time.perf_counter() - t0, 1),
               subsets={k: v['ua']['mean'] for k, v in cv['subsets'].items()},
               per_fold=[dict(name=f['name'], fused=f['ua'], late=f['late_fusion']['ua'], early=f['early_fusion']['ua'], early_C=f['early_fusion']['params']['C'],
                              **{f'{m}_alone': f['unimodal'][m]['ua'] for m in f['unimodal']}, **{f'fused_on_{m}': f['subsets'][m]['ua'] for m in f['unimodal']})
                         for f in cv['folds']],
               config=dict(model=asdict(mc), train=asdict(tc)))
    log(f"{name}: fused {fs['fused']:.3f} ± {fs['fused_std']:.3f}; alone {fs['unimodal']}; late {fs['late_fusion']:.3f}; early {fs['early_fusion']:.3f}; "
        f"fused on {fs['fused_on']} ({res['seconds']:.0f} s)")
    return res


def _pm(v, s) -> str:
    import math
    return f"{v:.3f} ± {s:.3f}" if s == s and not math.isinf(s) else f"{v:.3f}"


def write_md(allres:dict, path:Path):
    "fusion.md from the whole results file."
    L = ["# Does fusion work?", "",
         "Regenerate with `python benchmarks/fusion.py` (see its docstring for the stores it reads). Leave-one-session-out, "
         "UA = unweighted accuracy (mean recall over classes), mean ± sample std over the test folds; every row of a column "
         "is trained and tested on the same folds and the same features in the same run. Library defaults "
         "(`ModelConfig()`, `TrainConfig()`): late fusion of per-modality predictions from one shared emotion head, "
         "unimodal auxiliary loss. The baselines choose their settings on the training sessions only (early fusion: C by "
         "UA on a 3-fold split grouped by session; the unimodal models early-stop on a held-out training speaker).", ""]
    keys = [k for k in ('paired', 'paired_whisper', 'synthetic', 'paired_proxy') if k in allres]
    L += ["| | " + " | ".join(k for k in keys) + " |", "|---|" + "---|" * len(keys)]
    mods = ['A', 'V', 'T']
    def row(title, f): L.append(f"| {title} | " + " | ".join(f(allres[k]) for k in keys) + " |")
    for m in mods: row(f"{m} alone (its own model)", lambda r, m=m: _pm(r['unimodal'][m], r['unimodal_std'][m]) if m in r['unimodal'] else '-')
    row("late fusion (product of the unimodal probabilities)", lambda r: _pm(r['late_fusion'], r['late_fusion_std']))
    row("early fusion (LR on concatenated pooled features)", lambda r: _pm(r['early_fusion'], r['early_fusion_std']))
    row("**fused model (cmer)**", lambda r: f"**{_pm(r['fused'], r['fused_std'])}**")
    for m in mods: row(f"fused model tested on {m} alone", lambda r, m=m: (_pm(r['fused_on'][m], r['fused_on_std'][m]) + f" ({r['fused_on'][m] - r['unimodal'][m]:+.3f})") if m in r['fused_on'] else '-')
    row("target: best single + 30 % of its errors", lambda r: f"{r['targets']['goal_30pct']:.3f}")
    row("fused meets it", lambda r: 'yes' if r['targets']['fused_meets_30pct'] else f"no (gap {r['targets']['goal_30pct'] - r['fused']:.3f})")
    row("fused >= best single", lambda r: 'yes' if r['targets']['fused_ge_best'] else f"no ({r['fused'] - r['targets']['best_unimodal']:+.3f})")
    row("fused beats late / early fusion", lambda r: f"{'yes' if r['targets']['fused_beats_late'] else 'no'} ({r['fused'] - r['late_fusion']:+.3f}) / "
                                                    f"{'yes' if r['targets']['fused_beats_early'] else 'no'} ({r['fused'] - r['early_fusion']:+.3f})")
    row("fused on one modality within 0.05 of its own model", lambda r: 'yes' if r['targets']['single_modality_ok'] else 'no')
    row("utterances / folds / seconds", lambda r: f"{r['n_utterances']} / {r['n_folds']} / {r['seconds']:.0f}")
    L += ["", "Data:", ""] + [f"- **{k}**: {allres[k]['label']}; store `{allres[k]['store']}`, audio `{allres[k]['audio_features']}` "
                               f"({allres[k]['dims']})." for k in keys]
    L += ["", "Per fold (UA):", ""]
    for k in keys:
        pf = allres[k]['per_fold']; cols = list(pf[0])[1:]
        L += [f"**{k}**", "", "| fold | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        L += ["| " + f['name'] + " | " + " | ".join(f"{f[c]:.3f}" if isinstance(f[c], float) else str(f[c]) for c in cols) + " |" for f in pf] + [""]
    meta = allres.get('_meta', {})
    if meta: L += [f"Machine: {meta.get('machine')}; torch threads 1; run {meta.get('when')}. The machine is shared, so seconds are upper bounds."]
    path.write_text('\n'.join(L) + '\n')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--paired', default='/tmp/cmer_paired/out', help='output root of the chain run on PAIRED')
    ap.add_argument('--synthetic', default='/tmp/cmer_synth/out', help='output root of the chain run on the SYNTHETIC demo corpus')
    ap.add_argument('--proxy', default='/tmp/h6/proxy', help='folder of the PAIRED-like proxy store (paired_proxy only)')
    ap.add_argument('--only', default='paired,paired_whisper,synthetic', help='comma-separated corpora to (re-)run')
    ap.add_argument('--results', default=str(HERE/'results'/'fusion.json'))
    ap.add_argument('--md', default=str(HERE/'fusion.md'))
    a = ap.parse_args(argv)
    from cmer.core import atomic_json
    path = Path(a.results); allres = json.loads(path.read_text()) if path.exists() else {}
    stores = dict(paired=a.paired, paired_whisper=a.paired, synthetic=a.synthetic, paired_proxy=a.proxy)
    for name in a.only.split(','):
        allres[name] = run_corpus(name, stores[name])
        allres['_meta'] = dict(machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}", when=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
        atomic_json(path, allres); write_md(allres, Path(a.md))
    print(Path(a.md).read_text())


if __name__ == '__main__':
    main()
