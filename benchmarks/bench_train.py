"""Training benchmark: one leave-one-session-out fold (or all five) of the unified model at IEMOCAP size.

    python benchmarks/bench_train.py [--folds 1|5] [--threads N] [--modalities AVT] [--epochs N] [--no-aug] [-m key=value ...]
    python benchmarks/bench_train.py --emodb [-m key=value ...]

Builds, in memory, 5,531 utterances laid out like IEMOCAP's 4-class set (5 sessions of 1,085/1,023/1,151/
1,031/1,241 utterances, two speakers each, neu/ang/sad/hap = 1,708/1,103/1,084/1,636) and random features shaped
like the real ones: MFCC 300 x 20, 8 selected frames x 512, a 768-d sentence embedding, each with an
augmented view (as the full pipeline writes them). The features carry a planted class signal, so that early
stopping has something to follow (the scores themselves mean nothing; how many epochs a real corpus needs
differs, so the worst case, every fold running all epochs, is printed too). Then it trains and tests the
default model (`ModelConfig()`, `TrainConfig()`) with `cmer.evaluate.cross_validate` and prints, per fold, the
epochs run, seconds per epoch and seconds in all, and the time of five folds (measured with --folds 5,
extrapolated from the mean fold otherwise).

With --emodb it instead measures the audio branch on real speech: EmoDB (535 German utterances, 10 speakers,
7 emotions, from the data folder), MFCCs as the mfcc step computes them, leave-one-speaker-out, for the audio
encoders `audio_rnn='none'` (strided convolutions + attentive pooling, the default) and `audio_rnn='lstm'`
(the same + a BiLSTM), next to logistic regression on the MFCC means and standard deviations.

The CPU may be shared: the load average before and after is printed next to the numbers, and the process's
nice level. Every number is measured here.
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np, pandas as pd


def iemocap_like_table(seed: int = 0) -> pd.DataFrame:
    "5,531 utterance rows with IEMOCAP's session sizes, two speakers per session and its 4-class label counts."
    rng = np.random.default_rng(seed)
    sizes = {1: 1085, 2: 1023, 3: 1151, 4: 1031, 5: 1241}
    labels = rng.permutation(np.repeat(['neu', 'ang', 'sad', 'hap'], [1708, 1103, 1084, 1636]))
    rows, i = [], 0
    for s, n in sizes.items():
        for j in range(n):
            g = 'FM'[j % 2]
            rows.append(dict(utt_id=f'Ses{s:02d}F_impro01_{g}{j:03d}', session=s, speaker=f'Ses{s:02d}{g}', gender=g, label=labels[i])); i += 1
    df = pd.DataFrame(rows)
    df['label_id'] = df.label.map({'neu': 0, 'ang': 1, 'sad': 2, 'hap': 3})
    return df


def emodb(extra: dict, threads: int | None):
    "Leave-one-speaker-out on EmoDB: MFCC statistics + logistic regression, and the audio encoders."
    from cmer.core import get_config, make_features
    from cmer.mfcc import mfcc_settings, mfcc
    from cmer.media import read_audio
    from cmer.model import ModelConfig
    from cmer.train import TrainConfig, make_data, emotion_metrics
    from cmer.evaluate import cross_validate
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    root = (get_config().data_dir or Path('/nonexistent'))/'emodb'
    if not (root/'labels.csv').exists(): sys.exit(f"EmoDB not found under {root} (set CMER_DATA to the real-data folder)")
    lab = pd.read_csv(root/'labels.csv', dtype=str)
    st = mfcc_settings(); t0 = time.perf_counter()
    X = [mfcc(read_audio(root/'wav'/f, st['sr'])[0], **st) for f in lab.Filename]
    classes = sorted(lab.emotion.unique())
    table = pd.DataFrame(dict(utt_id=lab.Filename.str[:-4], session=lab.speaker.astype(int), speaker=lab.speaker,
                              gender=lab.gender.str[0].str.upper(), label=lab.emotion, label_id=lab.emotion.map({c: i for i, c in enumerate(classes)})))
    data = make_data(table, {'mfcc': make_features(table.utt_id, X)}, classes)
    spk = table.speaker.to_numpy()
    folds = [dict(name=s, test_session=s, train=np.flatnonzero(spk != s), val=None, test=np.flatnonzero(spk == s)) for s in sorted(set(spk))]
    print(f"EmoDB: {len(data)} utterances, {len(folds)} speakers, {len(classes)} classes (chance UA {1/len(classes):.3f}); "
          f"MFCC {X[0].shape} in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.2f}")
    S = np.stack([np.concatenate([x.mean(0), x.std(0)]) for x in X]); r = []
    for f in folds:
        sc = StandardScaler().fit(S[f['train']])
        m = LogisticRegression(C=0.1, max_iter=3000, class_weight='balanced').fit(sc.transform(S[f['train']]), data.labels[f['train']])
        r.append(emotion_metrics(data.labels[f['test']], m.predict(sc.transform(S[f['test']]))))
    print(f"  MFCC mean+std, logistic regression: UA {np.mean([x['ua'] for x in r]):.3f}, WA {np.mean([x['wa'] for x in r]):.3f}")
    tc = TrainConfig(**({'threads': threads} if threads else {}))
    for rnn in ('none', 'lstm'):
        mc = ModelConfig.from_dict({'audio_rnn': rnn, **extra}); t1 = time.perf_counter()
        cv = cross_validate(data, folds, mc, tc, subsets=False, progress=False)
        print(f"  audio encoder audio_rnn={rnn!r}: UA {cv['summary']['ua']['mean']:.3f} ± {cv['summary']['ua']['std']:.3f}, "
              f"WA {cv['summary']['wa']['mean']:.3f}; {time.perf_counter() - t1:.0f} s for {len(folds)} folds")
    print(f"load average after {os.getloadavg()[0]:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--folds', type=int, default=1, choices=[1, 5], help='time one fold (test session 5, the largest) or all five')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: TrainConfig().threads)')
    ap.add_argument('--modalities', default='AVT')
    ap.add_argument('--epochs', type=int, default=None, help='most epochs (default: TrainConfig().epochs)')
    ap.add_argument('--no-aug', action='store_true', help='features without augmented views')
    ap.add_argument('-m', '--model', action='append', default=[], metavar='KEY=VALUE', help='ModelConfig override, e.g. -m audio_stride=8')
    ap.add_argument('-t', '--train', action='append', default=[], metavar='KEY=VALUE', help='TrainConfig override, e.g. -t batch_size=128')
    ap.add_argument('--emodb', action='store_true', help='compare the audio encoders on EmoDB (real speech) instead')
    a = ap.parse_args(argv)
    import torch
    from cmer.model import ModelConfig
    from cmer.train import TrainConfig, synthetic_features, make_data
    from cmer.evaluate import loso_folds, cross_validate

    def kv(items):
        out = {}
        for it in items:
            k, v = it.split('=', 1)
            try: out[k] = json.loads(v)
            except json.JSONDecodeError: out[k] = v
        return out
    if a.emodb: return emodb(kv(a.model), a.threads)
    mc = ModelConfig.from_dict(kv(a.model))
    tc = TrainConfig.from_dict(kv(a.train))
    if a.threads: tc.threads = a.threads
    if a.epochs: tc.epochs = a.epochs

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    table = iemocap_like_table()
    feats = synthetic_features(table, a.modalities, dims={'audio': 20, 'video': 512, 'text': 768}, frames=(300, 300), k=(8, 8),
                               signal=1.0, aug=not a.no_aug, seed=0)
    data = make_data(table, feats)
    t_data = time.perf_counter() - t0
    folds = loso_folds(data.table)
    folds = folds if a.folds == 5 else folds[-1:]
    print(f"cmer training benchmark: {len(data)} utterances, modalities {a.modalities}, augmented views: {not a.no_aug}; "
          f"features built in {t_data:.1f} s")
    print(f"model: {json.dumps({k: v for k, v in vars(mc).items() if not k.startswith('w_')})}")
    print(f"losses: {mc.weights()}")
    print(f"training: {json.dumps(vars(tc))}")
    print(f"machine: {os.cpu_count()} CPUs, torch threads {tc.threads}, nice {os.nice(0)}, load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    t1 = time.perf_counter()
    cv = cross_validate(data, folds, mc, tc, subsets=True, progress=True)
    total = time.perf_counter() - t1
    load1 = os.getloadavg()
    for f in cv['folds']:
        per_epoch = np.mean([h['seconds'] for h in f['history']])
        print(f"fold {f['name']}: train {f['n_train']} / val {f['n_val']} / test {f['n_test']} utterances; {f['epochs_run']} epochs "
              f"(best {f['best_epoch']}), {per_epoch:.1f} s per epoch, {f['seconds']:.1f} s fit, UA {f['ua']:.3f} (planted signal, meaningless)")
    fold_mean = total / len(folds)
    per_epoch = np.mean([h['seconds'] for f in cv['folds'] for h in f['history']])
    rest = fold_mean - np.mean([f['seconds'] for f in cv['folds']])          # test-set prediction and modality subsets
    print(f"wall time incl. test-time subset evaluation: {total:.1f} s for {len(folds)} fold(s) = {fold_mean:.1f} s per fold")
    print(f"five-fold leave-one-session-out: {total:.1f} s ({total / 60:.1f} min) measured" if len(folds) == 5 else
          f"five-fold leave-one-session-out: about {5 * fold_mean:.0f} s ({5 * fold_mean / 60:.1f} min) extrapolated from this fold")
    worst = 5 * (tc.epochs * per_epoch + rest)
    print(f"worst case, every fold running all {tc.epochs} epochs: about {worst:.0f} s ({worst / 60:.1f} min) "
          f"at the measured {per_epoch:.1f} s per epoch")
    import resource
    print(f"load average after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == '__main__':
    main()
