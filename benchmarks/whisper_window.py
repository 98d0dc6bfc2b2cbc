"""Which Whisper encoder window makes the best audio features? (issue 18 item 3)

Data: real (EmoDB, 535 acted German utterances, 10 speakers; ../shared/data/emodb or $CMER_DATA), 7 classes and the 4
IEMOCAP classes, leave-one-speaker-out (10 folds). Each clip is 2.0 s.

Windows of cmer.mfcc.AudioFeaturizer (whisper-base encoder through CTranslate2, int8 on the CPU); every setting keeps
the clip's own frames (len(audio) // 320 rows of 512):
- trim:   the encoder reads only the clip's own log-mel frames;
- full:   the signal zero-padded to 30 s (Whisper's own input), log-mel of the whole window;
- melpad: the clip's log-mel, padded with zeros in the normalised log-mel domain to 30 s;
- fixed:  the signal zero-padded (or centre-cut) to `--fixed` seconds, log-mel of that.

For each window: the cost per clip (encoder seconds / clips, measured here), and leave-one-speaker-out UA (mean ± sd
over the 10 speakers) of (a) the linear probe (cmer.baselines.probe_cv: logistic regression on mean or mean+std pooled
features, pooling and C chosen on inner folds grouped by speaker) and (b) cmer's own audio model with its defaults
(ModelConfig(context=0): a clip has no dialogue; TrainConfig(): 'stats' branch, statistics and L2 chosen on inner folds).
The rule for the chain's default: the window with the best 7-class UA (mean of probe and cmer), unless it costs more
than 10 times the cheap windows (within twice the lowest cost) and its gain over the best of them is smaller than the
speaker-to-speaker sd; then that cheap window. 'fixed' is never the default: it cuts an utterance longer than its window
(EmoDB's 2 s clips cannot show that harm; IEMOCAP's utterances run to 30 s). Nothing else about the model is chosen here.

    python benchmarks/whisper_window.py [--windows trim,full,melpad,fixed] [--fixed 4.0] [--cache /tmp/cmer_bench]

Writes benchmarks/results/whisper_window.json and benchmarks/whisper_window.md.
"""
from __future__ import annotations
import argparse, json, os, platform, time
os.environ.setdefault('OMP_NUM_THREADS', '1')
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
DATA_LABEL = 'real (EmoDB speech)'


def features(window:str, table, cache:Path, fixed_s:float, layer:int|None=None):
    "Whisper encoder features of every clip with `window` (and encoder `layer`; None: its output through CTranslate2), cached; and the encoder seconds per clip."
    from cmer.core import load_features, save_features
    from cmer.mfcc import AudioFeaturizer, AudioSettings
    tag = (f"{window}{fixed_s:g}" if window == 'fixed' else window) + ('' if layer is None else f'_L{layer}')
    p, pt = cache/f'emodb_whisper_{tag}.npz', cache/f'emodb_whisper_{tag}.json'
    if p.exists() and pt.exists(): return load_features(p), json.loads(pt.read_text())['seconds_per_clip']
    fz = AudioFeaturizer(AudioSettings(kind='whisper', whisper_window=window, whisper_fixed_s=fixed_s, whisper_layer=layer))
    fz.encoder                                                            # load the model before timing
    t0 = time.perf_counter()
    feats, fails, _, _ = fz.files(list(zip(table.utt_id, table.wav)))
    sec = (time.perf_counter() - t0) / len(table)
    if fails: raise RuntimeError(f"{len(fails)} clip(s) failed, e.g. {fails[0]}")
    cache.mkdir(parents=True, exist_ok=True); save_features(p, feats); pt.write_text(json.dumps(dict(seconds_per_clip=sec)))
    return feats, sec


def evaluate(feats, clips, classes:str, seed:int=42) -> dict:
    "Leave-one-speaker-out UA of the probe and of cmer's audio model on `feats`."
    import torch
    from cmer.baselines import emodb_table, probe_cv
    from cmer.train import make_data, TrainConfig
    from cmer.model import ModelConfig
    from cmer.evaluate import cross_validate
    from cmer.protocols import make_folds
    torch.set_num_threads(1)
    table, names = emodb_table(clips, classes)
    data = make_data(table, {'whisper': feats}, names, audio='whisper')
    folds = make_folds(data.table, 'loso')                                 # EmoDB: session = speaker
    X = {'mean': data.pooled('audio', 'orig', 'mean')[data.rows['audio']], 'meanstd': data.pooled('audio', 'orig', 'meanstd')[data.rows['audio']]}
    t0 = time.perf_counter(); pr = probe_cv(X, data.labels, folds, data.table.speaker.to_numpy()); tp = time.perf_counter() - t0
    t0 = time.perf_counter(); cv = cross_validate(data, folds, ModelConfig(context=0), TrainConfig(seed=seed), subsets=False, progress=False); tc = time.perf_counter() - t0
    ua = lambda fs: [f['ua'] for f in fs]
    return dict(probe=ua(pr['folds']), cmer=ua(cv['folds']), probe_settings=[f"{f['setting']} C={f['params']['C']:g}" for f in pr['folds']],
                cmer_l2=[f['tuning']['l2']['audio'] for f in cv['folds']], seconds=dict(probe=round(tp, 1), cmer=round(tc, 1)),
                folds=[f['name'] for f in folds], n=len(data))


def ms(v): v = np.asarray(v, float); return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def write_md(R:dict, path:Path):
    L = ["# Whisper encoder window (EmoDB, real speech)", "", __doc__.split('\n\n')[1].strip(), "",
         f"Regenerate with `python benchmarks/whisper_window.py`. Data: {DATA_LABEL}. UA mean ± sd over the 10 held-out speakers.", "",
         "| window | encoder s / clip | probe 7 cl. | cmer 7 cl. | probe 4 cl. | cmer 4 cl. |", "|---|---|---|---|---|---|"]
    for w, r in R['windows'].items():
        L.append(f"| {w} | {r['seconds_per_clip']:.3f} | {ms(r['7']['probe'])} | {ms(r['7']['cmer'])} | {ms(r['4']['probe'])} | {ms(r['4']['cmer'])} |")
    best = R['chosen']
    ru = R['rule']
    L += ["", f"**Chosen for the chain: `{best}`.** Best 7-class UA (mean of probe and cmer): `{ru['best']}`, {ru['gain']:+.3f} over the best cheap "
          f"window `{ru['cheapest']}` (speaker-to-speaker sd {ru['speaker_sd']:.3f}), at "
          f"{R['windows'][ru['best']]['seconds_per_clip'] / R['windows'][ru['cheapest']]['seconds_per_clip']:.0f} times its cost per clip. "
          "A 30 s window is one setting away (`cmer run -p whisper_window=full`). "
          "The shipped default model of `cmer predict` reads the `full` window (`cmer.default_model.DEFAULT_AUDIO`): it scores one file, "
          "not a corpus, so the cost per segment matters less than the accuracy.", "", "Per-speaker UA (7 classes, probe / cmer):", ""]
    for w, r in R['windows'].items():
        L.append(f"- {w}: " + ', '.join(f"{s} {p:.2f}/{c:.2f}" for s, p, c in zip(r['7']['folds'], r['7']['probe'], r['7']['cmer'])))
    L += ["", f"Machine: {R['machine']}; {R['when']}. Seconds are upper bounds (a shared machine)."]
    path.write_text('\n'.join(L) + '\n')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--windows', default='trim,full,melpad,fixed')
    ap.add_argument('--fixed', type=float, default=4.0, help="seconds of the 'fixed' window")
    ap.add_argument('--cache', default='/tmp/cmer_bench')
    ap.add_argument('--results', default=str(HERE/'results'/'whisper_window.json'))
    ap.add_argument('--md', default=str(HERE/'whisper_window.md'))
    ap.add_argument('--report-only', action='store_true', help='apply the rule and rewrite the report from the results file')
    a = ap.parse_args(argv)
    if a.report_only:
        R = json.loads(Path(a.results).read_text()); choose(R); write_md(R, Path(a.md)); print(Path(a.md).read_text()); return
    from cmer.corpus import read_emodb
    from cmer.core import atomic_json
    clips = read_emodb()
    R = dict(data=DATA_LABEL, windows={}, machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
             when=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), fixed_s=a.fixed)
    for w in a.windows.split(','):
        feats, sec = features(w, clips, Path(a.cache), a.fixed)
        R['windows'][w] = dict(seconds_per_clip=sec, **{c: evaluate(feats, clips, c) for c in ('7', '4')})
        r = R['windows'][w]; print(f"{w}: {sec:.3f} s/clip; 7 cl. probe {ms(r['7']['probe'])} cmer {ms(r['7']['cmer'])}; 4 cl. probe {ms(r['4']['probe'])} cmer {ms(r['4']['cmer'])}", flush=True)
    choose(R)
    atomic_json(Path(a.results), R); write_md(R, Path(a.md))
    print(Path(a.md).read_text())


def choose(R:dict):
    "The chain's default window by the rule of the docstring (into R['chosen'], R['rule'])."
    score = {w: (np.mean(r['7']['probe']) + np.mean(r['7']['cmer'])) / 2 for w, r in R['windows'].items()}
    low = min(r['seconds_per_clip'] for r in R['windows'].values())
    best = max(score, key=score.get); cheap = max((w for w, r in R['windows'].items() if r['seconds_per_clip'] <= 2 * low and w != 'fixed'), key=score.get)
    sd = float(np.std(R['windows'][cheap]['7']['probe'], ddof=1))
    costly = R['windows'][best]['seconds_per_clip'] > 10 * R['windows'][cheap]['seconds_per_clip']
    R['chosen'] = cheap if costly and score[best] - score[cheap] < sd else best
    R['rule'] = dict(score=score, best=best, cheapest=cheap, gain=score[best] - score[cheap], speaker_sd=sd, costly=costly)


if __name__ == '__main__':
    main()
