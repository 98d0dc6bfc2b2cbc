"""Which layer of the Whisper encoder makes the best audio features? (issue 18, items 1 and 3)

Data: real (EmoDB, 535 acted German utterances, 10 speakers; ../shared/data/emodb or $CMER_DATA), 7 classes and the 4
IEMOCAP classes, leave-one-speaker-out (10 folds).

CTranslate2 returns only the encoder's last layer; cmer.mfcc.WhisperLayers runs the same whisper-base weights in torch
(float32) and gives every layer's output from one pass (0: the convolutions and positions; 6: the last block with the
final layer norm, CTranslate2's output). For each window (trim: the clip's own log-mel, the chain's window; full: the clip
zero-padded to 30 s, the default model's window) and each layer, the linear probe (cmer.baselines.probe_cv: logistic
regression on mean or mean+std pooled features, pooling and C chosen on inner folds grouped by speaker) gives the
leave-one-speaker-out UA. "Chosen on inner folds" picks, in every outer fold, the layer whose inner-fold UA is best, and
scores that fold with it: the honest figure for choosing a layer. The chain's default layer (`whisper_layer` of step 04) is
the layer picked most often by the inner folds over both windows and both class sets (ties: the lower, cheaper layer); cmer's own
audio model (ModelConfig(context=0), TrainConfig(): 'stats' branch, statistics and L2 chosen on inner folds) is trained
on it and on the last layer.

    python benchmarks/whisper_layers.py [--windows trim,full] [--cache /tmp/cmer_bench]

Writes benchmarks/results/whisper_layers.json and benchmarks/whisper_layers.md.
"""
from __future__ import annotations
import argparse, json, os, platform, time
os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
from collections import Counter
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
DATA_LABEL = 'real (EmoDB speech)'


def layer_features(window:str, clips, cache:Path) -> tuple[list, float]:
    "Features (cmer Features, ragged) of every layer for every clip with `window`, cached; and the encoder seconds per clip (all layers)."
    import torch
    from cmer.core import load_features, save_features, make_features
    from cmer.mfcc import WhisperEncoder, whisper_frames
    from cmer.media import read_audio
    torch.set_num_threads(1)
    enc = WhisperEncoder(window=window, layer=0); L = enc.layers.n_layers
    paths, pt = [cache/f'emodb_whisper_layers_{window}_L{l}.npz' for l in range(L + 1)], cache/f'emodb_whisper_layers_{window}.json'
    if all(p.exists() for p in paths) and pt.exists(): return [load_features(p) for p in paths], json.loads(pt.read_text())['seconds_per_clip']
    out, t_enc = [[] for _ in range(L + 1)], 0.0
    for w in clips.wav:
        y, _ = read_audio(w); n = whisper_frames(len(y)); mel = enc.mel(y)[None]
        t0 = time.perf_counter(); hs = enc.layers(mel, list(range(L + 1))); t_enc += time.perf_counter() - t0
        for l, h in enumerate(hs): out[l].append(h[0, :n].copy())            # (a copy: a view would keep the whole 30 s window)
    cache.mkdir(parents=True, exist_ok=True)
    feats = [make_features(clips.utt_id.tolist(), out[l], meta=dict(kind='whisper', window=window, layer=l), ragged=True) for l in range(L + 1)]
    for p, f in zip(paths, feats): save_features(p, f)
    sec = t_enc / len(clips); pt.write_text(json.dumps(dict(seconds_per_clip=sec)))
    return feats, sec


def probes(feats:list, clips, classes:str) -> dict:
    "Per layer: the probe's fold UAs and inner-fold UAs; and the layer chosen on inner folds in each outer fold."
    from cmer.baselines import emodb_table, probe_cv
    from cmer.train import make_data
    from cmer.protocols import make_folds
    table, names = emodb_table(clips, classes); per = {}
    for l, f in enumerate(feats):
        data = make_data(table, {'whisper': f}, names, audio='whisper')
        folds = make_folds(data.table, 'loso')
        X = {p: data.pooled('audio', 'orig', p)[data.rows['audio']] for p in ('mean', 'meanstd')}
        r = probe_cv(X, data.labels, folds, data.table.speaker.to_numpy())
        per[l] = dict(ua=[x['ua'] for x in r['folds']], val=[x['val_ua'] for x in r['folds']], settings=[x['setting'] for x in r['folds']])
    n = len(per[0]['ua']); pick = [max(per, key=lambda l: (per[l]['val'][i], -l)) for i in range(n)]
    return dict(layers=per, pick=pick, chosen=[per[l]['ua'][i] for i, l in enumerate(pick)], folds=[x['name'] for x in folds])


def ms(v): v = np.asarray(v, float); return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def write_md(R:dict, path:Path):
    L = ["# Whisper encoder layer (EmoDB, real speech)", "", __doc__.split('\n\n')[1].strip(), "",
         f"Regenerate with `python benchmarks/whisper_layers.py`. Data: {DATA_LABEL}. UA mean ± sd over the 10 held-out speakers.", ""]
    for w, r in R['windows'].items():
        L += [f"## Window `{w}` (encoder, all layers in one pass: {r['seconds_per_clip']:.3f} s per clip, torch float32, 1 thread)", "",
              "| layer | probe 7 cl. | probe 4 cl. |", "|---|---|---|"]
        for l in r['7']['layers']:
            L.append(f"| {l}{' (last: CTranslate2 output)' if int(l) == R['n_layers'] else ''} | {ms(r['7']['layers'][l]['ua'])} | {ms(r['4']['layers'][l]['ua'])} |")
        L.append(f"| chosen on inner folds | {ms(r['7']['chosen'])} (layers {r['7']['pick']}) | {ms(r['4']['chosen'])} (layers {r['4']['pick']}) |")
        L.append("")
    d = R['default_layer']
    L += [f"**The chain's default: layer {d}** (picked {R['votes'][str(d)]} times of {sum(R['votes'].values())} by the inner folds; votes {R['votes']}).", "",
          "cmer's own audio model (trim window, the chain's) against the probe on the same features:", "",
          "| features | cmer 7 cl. | probe 7 cl. | cmer 4 cl. | probe 4 cl. |", "|---|---|---|---|---|"]
    for name, r in R['cmer'].items():
        L.append(f"| {name} | {ms(r['7']['cmer'])} | {ms(r['7']['probe'])} | {ms(r['4']['cmer'])} | {ms(r['4']['probe'])} |")
    L += ["", "The previous default, the last layer through CTranslate2 int8 (benchmarks/whisper_window.md, trim): probe 0.769, cmer 0.757 on 7 "
          "classes. Encoder cost of the default layer alone (trim, torch float32, 1 thread): "
          f"{R['default_seconds_per_clip']:.3f} s per clip (the last layer through CTranslate2 int8: 0.068 s, whisper_window.md).", "",
          "Per-speaker UA of the default layer (trim, 7 classes, probe / cmer): " + ', '.join(
              f"{s} {p:.2f}/{c:.2f}" for s, p, c in zip(R['folds'], R['cmer'][f"layer {d}"]['7']['probe'], R['cmer'][f"layer {d}"]['7']['cmer'])), "",
          f"Machine: {R['machine']}; {R['when']}. Seconds are upper bounds (a shared machine)."]
    path.write_text('\n'.join(L) + '\n')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--windows', default='trim,full')
    ap.add_argument('--cache', default='/tmp/cmer_bench')
    ap.add_argument('--results', default=str(HERE/'results'/'whisper_layers.json'))
    ap.add_argument('--md', default=str(HERE/'whisper_layers.md'))
    a = ap.parse_args(argv)
    import torch
    from cmer.corpus import read_emodb
    from cmer.core import atomic_json
    from cmer.mfcc import WhisperEncoder
    from cmer.media import read_audio
    from whisper_window import evaluate
    torch.set_num_threads(1)
    clips = read_emodb(); cache = Path(a.cache)
    R = dict(data=DATA_LABEL, windows={}, cmer={}, machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
             when=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    feats = {}
    for w in a.windows.split(','):
        feats[w], sec = layer_features(w, clips, cache)
        R['windows'][w] = dict(seconds_per_clip=sec, **{c: probes(feats[w], clips, c) for c in ('7', '4')})
        r = R['windows'][w]; R['n_layers'] = len(feats[w]) - 1; R['folds'] = r['7']['folds']
        print(f"{w}: " + '; '.join(f"L{l} {np.mean(r['7']['layers'][l]['ua']):.3f}/{np.mean(r['4']['layers'][l]['ua']):.3f}" for l in r['7']['layers'])
              + f"; chosen {np.mean(r['7']['chosen']):.3f} {r['7']['pick']} / {np.mean(r['4']['chosen']):.3f} {r['4']['pick']}", flush=True)
    votes = Counter(l for r in R['windows'].values() for c in ('7', '4') for l in r[c]['pick'])
    R['votes'] = {str(l): votes[l] for l in sorted(votes)}
    R['default_layer'] = d = min(votes, key=lambda l: (-votes[l], l))
    trim = feats.get('trim') or layer_features('trim', clips, cache)[0]
    for name, l in ((f'layer {d}', d), (f'layer {R["n_layers"]} (last)', R['n_layers'])):
        R['cmer'][name] = {c: evaluate(trim[l], clips, c) for c in ('7', '4')}
        print(name, {c: f"cmer {np.mean(v['cmer']):.3f} probe {np.mean(v['probe']):.3f}" for c, v in R['cmer'][name].items()}, flush=True)
    enc = WhisperEncoder(window='trim', layer=d); ys = [read_audio(w)[0] for w in clips.wav]
    t0 = time.perf_counter(); [enc.windows([y]) for y in ys]; R['default_seconds_per_clip'] = (time.perf_counter() - t0) / len(ys)
    for w in R['windows'].values():                    # JSON keys are text
        for c in ('7', '4'): w[c]['layers'] = {str(k): v for k, v in w[c]['layers'].items()}
    atomic_json(Path(a.results), R); write_md(R, Path(a.md))
    print(Path(a.md).read_text())


if __name__ == '__main__':
    main()
