#!/usr/bin/env python
"""Real-data evidence: each modality's encoder measured on real emotion data, next to simple baselines, in one run.

    python benchmarks/real_data.py [--quick] [--jobs 2] [--work DIR] [--fresh]

Writes benchmarks/README.md (the report), benchmarks/figures/*.png and benchmarks/results/real_data.json:
1. text: iemocap.csv (5,531 real transcripts, 4 classes), leave-one-session-out: cmer text-only on MiniLM and
   mpnet sentence embeddings, with and without the back-translated view (apertium en>ca>es>en), next to
   TF-IDF + logistic regression and embeddings + logistic regression;
2. speech: EmoDB (535 clips, 10 speakers), leave-one-speaker-out, 7 classes and the IEMOCAP 4: cmer's audio
   encoder on MFCC 20 x T (library defaults, and the settings chosen on validation data) next to MFCC
   statistics + SVM;
3. faces: FER2013's official test split, the shipped frame encoder, 7- and 4-class accuracy;
4. ablation: each loss term switched off and each modality subset, on the real text and on the SYNTHETIC demo corpus;
5. protocol: the original's random 60/20/20 utterance split next to leave-one-session-out on the real text.
Nothing is tuned on a test fold: baselines choose C on an inner speaker/session-grouped split of the training
folds, cmer early-stops on a held-out training speaker. The data folder comes from the config (CMER_DATA).
Embeddings, MFCCs and the demo corpus are cached in --work (default: next to the model cache); --fresh
clears that cache first (the translation cache of cmer.text_aug is kept; the report says how much it held).
"""
from __future__ import annotations
import argparse, hashlib, json, os, platform, shutil, sys, time, datetime
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np, pandas as pd

HERE = Path(__file__).resolve().parent
FIG, RES = HERE/'figures', HERE/'results'

# cmer audio settings for EmoDB, chosen by the mean validation UA (a held-out *training* speaker per fold) over
# both tasks in a sweep of 32 runs (benchmarks/results/emodb_sweep.json); test folds played no part.
AUDIO_MC = dict(audio_conv=128, audio_deltas=2, audio_std_pool=True)
AUDIO_TC = dict(epochs=40, patience=10, min_epochs=10)


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def data_dir() -> Path:
    from cmer.core import get_config, MissingResourceError
    d = get_config().data_dir
    need = ['iemocap.csv', 'emodb/labels.csv', 'fer2013_48x48.npz']
    if d is None or not all((Path(d)/n).exists() for n in need):
        raise MissingResourceError(f"the real-data folder with {', '.join(need)} ({d or 'not configured'})",
                                   "Set CMER_DATA to the folder that holds them.")
    return Path(d)


def _threads():
    import torch; torch.set_num_threads(1)


def _cv_out(cv, classes):
    "What to keep of cmer.evaluate.cross_validate's result."
    return dict(folds=[{k: f[k] for k in ('name', 'n_train', 'n_val', 'n_test', 'wa', 'ua', 'macro_f1', 'weighted_f1', 'best_epoch', 'epochs_run', 'seconds')}
                       | dict(val_ua=max([h.get('val_ua', float('nan')) for h in f['history']], default=float('nan'))) for f in cv['folds']],
                summary=cv['summary'], confusion=np.asarray(cv['confusion']).tolist(), classes=list(classes))


def _base_out(r, classes):
    return dict(folds=[{k: (v if k != 'params' else dict(v)) for k, v in f.items()} for f in r['folds']], summary=r['summary'],
                confusion=r['confusion'].tolist(), classes=list(classes))


# ---------------------------------------------------------------- text (sections 1, 4 text, 5)
def text_inputs(work: Path, models, quick: bool):
    "Utterance table, transcripts, back-translations and sentence embeddings (cached) of iemocap.csv."
    from cmer.corpus import read_flat_csv, apply_label_map
    from cmer.text_aug import BackTranslator, default_cache_path, TranslationCache
    from cmer.text_embed import load_encoder, embed
    d = data_dir()
    df, _ = read_flat_csv(d/'iemocap.csv')
    table, rep = apply_label_map(df, '4class')
    texts = table.transcript.tolist()
    t0 = time.perf_counter()
    cache = default_cache_path()
    bt = BackTranslator('en>ca>es>en', 'apertium', cache=cache)
    aug, fails = bt(texts)
    bt_info = dict(chain='en>ca>es>en', backend='apertium', cache=str(cache), seconds=round(time.perf_counter() - t0, 1),
                   failures=len(fails), hops=bt.stats, changed=int(sum(a is not None and a != t for a, t in zip(aug, texts))))
    log(f"text: {len(table)} utterances; back-translation {bt_info['seconds']} s ({[h['cached'] for h in bt.stats]} cached per hop), {len(fails)} failures")
    emb = {}
    for m in models:
        key = hashlib.sha256(json.dumps([m, texts, aug]).encode()).hexdigest()[:16]
        p = work/f'text_{m}_{key}.npz'
        t1 = time.perf_counter()
        if p.exists():
            with np.load(p) as z: emb[m] = (z['orig'], z['aug'])
            how = 'cached'
        else:
            enc = load_encoder(m)
            orig = embed(enc, texts)
            ok = [i for i, a in enumerate(aug) if a]
            a = np.full_like(orig, np.nan); a[ok] = embed(enc, [aug[i] for i in ok])
            np.savez(p, orig=orig, aug=a); emb[m] = (orig, a); how = 'computed'
        log(f"text: {m} embeddings {emb[m][0].shape} {how} in {time.perf_counter() - t1:.0f} s")
    return table, texts, aug, emb, bt_info


def text_data(table, emb_m, with_aug: bool):
    from cmer.core import make_features
    from cmer.train import make_data
    orig, aug = emb_m
    feats = {'text': make_features(table.utt_id, orig)}
    if with_aug:
        ok = np.isfinite(aug).all(1)
        feats['text_aug'] = make_features(table.utt_id[ok], aug[ok])
    return make_data(table[['utt_id', 'session', 'speaker', 'gender', 'label', 'label_id']], feats, ['neu', 'ang', 'sad', 'hap'])


def run_text(work: Path, quick: bool, part: str = 'minilm') -> dict:
    "Part 'minilm': TF-IDF, MiniLM + LR, cmer on MiniLM, the text ablation and the random split; part 'mpnet': mpnet + LR, cmer on mpnet."
    _threads()
    from cmer.model import ModelConfig
    from cmer.train import TrainConfig
    from cmer.evaluate import loso_folds, random_split, check_folds, cross_validate
    from cmer.baselines import baseline_cv, BASELINE_GRIDS
    t0 = time.perf_counter()
    models = [part]
    table, texts, aug, emb, bt_info = text_inputs(work, models, quick)
    classes = ['neu', 'ang', 'sad', 'hap']
    y = table.label_id.to_numpy(); groups = table.session.to_numpy()
    folds = loso_folds(table); check_folds(table, folds)
    tc = TrainConfig(epochs=3, min_epochs=2) if quick else TrainConfig()
    out = dict(n=len(table), classes=classes, back_translation=bt_info, loso={}, seconds={})
    t_prep = time.perf_counter() - t0
    t1 = time.perf_counter()
    grid = {'tfidf_lr': BASELINE_GRIDS['tfidf_lr'][1:3] if quick else None, 'embed_lr': None}
    if part == 'minilm':
        r = baseline_cv('tfidf_lr', texts, y, folds, groups=groups, grid=grid['tfidf_lr'], classes=classes)
        out['loso']['TF-IDF + LR'] = _base_out(r, classes); log(f"text: TF-IDF + LR UA {r['summary']['ua']['mean']:.3f}")
    for m in models:
        r = baseline_cv('embed_lr', emb[m][0], y, folds, groups=groups, classes=classes)
        out['loso'][f'{m} + LR'] = _base_out(r, classes); log(f"text: {m} + LR UA {r['summary']['ua']['mean']:.3f}")
    out['seconds']['baselines'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    for m in models:
        for with_aug in (False, True):
            data = text_data(table, emb[m], with_aug)
            mc = ModelConfig() if with_aug else ModelConfig(w_aug=0.0)
            cv = cross_validate(data, folds, mc, tc, subsets=False, progress=False)
            name = f"cmer {m}" + (' + back-translation' if with_aug else '')
            out['loso'][name] = _cv_out(cv, classes); log(f"text: {name} UA {cv['summary']['ua']['mean']:.3f}")
    out['seconds']['cmer'] = time.perf_counter() - t1
    out['seconds']['prep'] = t_prep
    if part != 'minilm':
        out['seconds']['total'] = time.perf_counter() - t0
        return out
    # section 4 on real text: each loss term off (MiniLM + back-translation; 'xmodal' needs two modalities)
    t1 = time.perf_counter()
    data = text_data(table, emb['minilm'], True)
    abl = [dict(subset='T', off=None, active=True, reason='', **_flat(out['loso']['cmer minilm + back-translation']['summary']))]
    for term in ('gender', 'recon', 'xmodal', 'supcon', 'aug'):
        if term == 'xmodal': abl.append(dict(subset='T', off=term, active=False, reason='needs two modalities')); continue
        if quick and term != 'aug': continue
        cv = cross_validate(data, folds, ModelConfig().without(term), tc, subsets=False, progress=False)
        abl.append(dict(subset='T', off=term, active=True, reason='', **_flat(cv['summary'])))
        log(f"text ablation: -{term} UA {cv['summary']['ua']['mean']:.3f}")
    out['ablation'] = abl
    out['seconds']['ablation'] = time.perf_counter() - t1
    # section 5: the original's random 60/20/20 split (speaker-dependent) on the same data
    t1 = time.perf_counter()
    rf = random_split(table, seed=42)
    out['random'] = {}
    r = baseline_cv('tfidf_lr', texts, y, rf, grid=grid['tfidf_lr'], classes=classes); out['random']['TF-IDF + LR'] = _base_out(r, classes)
    r = baseline_cv('embed_lr', emb['minilm'][0], y, rf, classes=classes); out['random']['minilm + LR'] = _base_out(r, classes)
    cv = cross_validate(data, rf, ModelConfig(), tc, subsets=False, progress=False)
    out['random']['cmer minilm + back-translation'] = _cv_out(cv, classes)
    out['seconds']['random'] = time.perf_counter() - t1
    out['seconds']['total'] = time.perf_counter() - t0
    return out


def _flat(summary):
    return {f'{k}_{q}': summary[k][q] for k in ('ua', 'wa', 'weighted_f1') if k in summary for q in ('mean', 'std')}


# ---------------------------------------------------------------- speech (section 2)
def emodb_mfcc(work: Path):
    from cmer.baselines import read_emodb
    from cmer.mfcc import mfcc_settings, mfcc
    from cmer.media import read_audio
    df = read_emodb(data_dir()/'emodb')
    st = mfcc_settings()
    p = work/f"emodb_mfcc_{hashlib.sha256(json.dumps([st, df.utt_id.tolist()]).encode()).hexdigest()[:16]}.npz"
    if p.exists():
        with np.load(p, allow_pickle=False) as z: X = [z[u] for u in df.utt_id]
    else:
        X = [mfcc(read_audio(w, st['sr'])[0], **st) for w in df.wav]
        np.savez(p, **dict(zip(df.utt_id, X)))
    return df, X, st


def run_emodb_task(work: Path, task: str, which: str, quick: bool) -> dict:
    "One EmoDB task ('7'/'4') with one method ('svm', 'cmer-default', 'cmer-tuned')."
    _threads()
    from cmer.core import make_features
    from cmer.model import ModelConfig
    from cmer.train import TrainConfig, make_data
    from cmer.evaluate import cross_validate, check_folds
    from cmer.baselines import emodb_table, baseline_cv, BASELINE_GRIDS
    t0 = time.perf_counter()
    df, X, st = emodb_mfcc(work)
    table, classes = emodb_table(df, task)
    Xi = [X[i] for i in np.flatnonzero(df.utt_id.isin(table.utt_id))]
    spk = table.speaker.to_numpy()
    folds = [dict(name=s, test_session=int(s), train=np.flatnonzero(spk != s), val=None, test=np.flatnonzero(spk == s)) for s in sorted(set(spk))]
    check_folds(table, folds)
    if which == 'svm':
        r = baseline_cv('mfcc_svm', Xi, table.label_id.to_numpy(), folds, groups=spk, classes=classes,
                        grid=BASELINE_GRIDS['mfcc_svm'][:2] if quick else None)
        out = _base_out(r, classes)
    else:
        data = make_data(table, {'mfcc': make_features(table.utt_id, Xi)}, classes)
        mc = ModelConfig.from_dict(AUDIO_MC if which == 'cmer-tuned' else {})
        tc = TrainConfig.from_dict((AUDIO_TC if which == 'cmer-tuned' else {}) | (dict(epochs=3, min_epochs=2) if quick else {}))
        cv = cross_validate(data, folds, mc, tc, subsets=False, progress=False)
        out = _cv_out(cv, classes) | dict(model_config={k: v for k, v in AUDIO_MC.items()} if which == 'cmer-tuned' else {},
                                          train_config=AUDIO_TC if which == 'cmer-tuned' else {})
    out.update(task=task, method=which, n=len(table), seconds=time.perf_counter() - t0, mfcc=st)
    log(f"EmoDB {task}-class {which}: UA {out['summary']['ua']['mean']:.3f} ± {out['summary']['ua']['std']:.3f} ({out['seconds']:.0f} s)")
    return out


# ---------------------------------------------------------------- faces (section 3)
def run_fer(work: Path, quick: bool) -> dict:
    _threads()
    from cmer.fer import load_fer2013, load_fer_encoder, fer_predict, fer_accuracy, FER_CLASSES, IEMOCAP4
    t0 = time.perf_counter()
    X, y = load_fer2013(data_dir())['test']
    if quick: X, y = X[:500], y[:500]
    _, probs = fer_predict(load_fer_encoder(), X)
    acc = fer_accuracy(probs, y)
    cm7 = np.zeros((7, 7), np.int64); np.add.at(cm7, (y, probs.argmax(1)), 1)
    idx4 = [FER_CLASSES.index(c) for c in IEMOCAP4.values()]
    m4 = np.isin(y, idx4); y4 = np.array([idx4.index(v) for v in y[m4]]); p4 = probs[m4][:, idx4].argmax(1)
    cm4 = np.zeros((4, 4), np.int64); np.add.at(cm4, (y4, p4), 1)
    out = dict(acc, confusion7=cm7.tolist(), confusion4=cm4.tolist(), classes7=FER_CLASSES, classes4=list(IEMOCAP4.values()),
               seconds=time.perf_counter() - t0)
    log(f"FER2013 test: acc7 {acc['acc7']:.4f}, acc4 {acc['acc4']:.4f}")
    return out


# ---------------------------------------------------------------- demo corpus ablation (section 4, SYNTHETIC)
def run_demo_ablation(work: Path, quick: bool, demo_out: str | None = None) -> dict:
    _threads()
    from cmer.demo import demo_corpus
    from cmer.chain import run_upstream
    from cmer.core import load_manifest
    from cmer.model import ModelConfig
    from cmer.train import TrainConfig, load_data
    from cmer.evaluate import loso_folds, check_folds, cross_validate, modality_subsets
    from cmer.model import modality_code
    t0 = time.perf_counter()
    if demo_out: out_dir = Path(demo_out)          # an existing chain output root of a demo corpus
    else:
        per = 16 if quick else 40
        corpus = demo_corpus(work/f'demo_corpus_{per}', per_session=per, n_jobs=1)
        out_dir = work/f'demo_out_{per}'
        run_upstream(corpus, out_dir, 'evaluate')
    t_chain = time.perf_counter() - t0
    data = load_data(out_dir)
    synthetic = bool((load_manifest(out_dir, 'corpus') or {}).get('report', {}).get('synthetic'))
    tc = TrainConfig(epochs=3, min_epochs=2) if quick else TrainConfig()
    cells = []
    for s in modality_subsets(data.modalities):
        code = modality_code(s)
        offs = [None] + (['gender', 'recon', 'xmodal', 'supcon', 'aug'] if len(s) == len(data.modalities) else [])
        for off in offs:
            if quick and off not in (None, 'aug'): continue
            d = data.select(code); folds = loso_folds(d.table); check_folds(d.table, folds)
            cv = cross_validate(d, folds, ModelConfig().without(off) if off else ModelConfig(), tc, subsets=False, progress=False)
            cells.append(dict(subset=code, off=off, active=True, reason='', **_flat(cv['summary'])))
            log(f"demo ablation (SYNTHETIC): {code} {'-' + off if off else 'full'} UA {cv['summary']['ua']['mean']:.3f}")
    return dict(synthetic=synthetic, n=len(data), modalities=modality_code(data.modalities), cells=cells, out=str(out_dir), reused=bool(demo_out),
                seconds=dict(chain=t_chain, ablation=time.perf_counter() - t0 - t_chain, total=time.perf_counter() - t0))


# ---------------------------------------------------------------- figures and report
def plot_recall(rows: dict, classes, title: str, path: Path) -> Path:
    "Grouped bars: per-class recall of each method (from pooled confusion matrices)."
    from cmer.evaluate import _fig, _save
    fig = _fig(1.6 + 0.55 * len(classes) * max(2, len(rows)) / 2, 3.2); ax = fig.add_subplot()
    w = 0.8 / len(rows)
    for i, (name, cm) in enumerate(rows.items()):
        cm = np.asarray(cm); rec = np.diag(cm) / np.maximum(cm.sum(1), 1)
        ax.bar(np.arange(len(classes)) + (i - (len(rows) - 1) / 2) * w, rec, w, label=name)
    ax.set_xticks(np.arange(len(classes)), classes); ax.set_ylim(0, 1); ax.set_ylabel('recall (all test folds pooled)')
    ax.grid(axis='y', alpha=0.3); ax.legend(fontsize=7, ncol=2); ax.set_title(title, fontsize=9)
    return _save(fig, path)


def pm(s, k='ua'):
    v = s.get(k) or {}
    m, sd = v.get('mean', float('nan')), v.get('std', float('nan'))
    return '–' if not np.isfinite(m) else f"{m:.3f}" + (f" ± {sd:.3f}" if np.isfinite(sd) else '')


def figures(R: dict) -> list[str]:
    from cmer.evaluate import plot_confusion
    FIG.mkdir(parents=True, exist_ok=True)
    made = []
    t = R.get('text')
    if t:
        L = t['loso']; best_cmer = max((k for k in L if k.startswith('cmer')), key=lambda k: L[k]['summary']['ua']['mean'])
        sel = {k: L[k]['confusion'] for k in ['TF-IDF + LR', 'minilm + LR', 'mpnet + LR', best_cmer] if k in L}
        made.append(plot_recall(sel, t['classes'], 'IEMOCAP transcripts, leave-one-session-out: per-class recall', FIG/'text_recall.png'))
        made.append(plot_confusion(L[best_cmer]['confusion'], t['classes'], f'IEMOCAP transcripts (LOSO): {best_cmer}', FIG/'text_confusion_cmer.png'))
        made.append(plot_confusion(L['TF-IDF + LR']['confusion'], t['classes'], 'IEMOCAP transcripts (LOSO): TF-IDF + LR', FIG/'text_confusion_tfidf.png'))
    a = R.get('emodb')
    if a:
        for task in ('7', '4'):
            rows = {LABEL[k]: v['confusion'] for k, v in a[task].items()}
            cl = next(iter(a[task].values()))['classes']
            made.append(plot_recall(rows, cl, f'EmoDB {task} classes, leave-one-speaker-out: per-class recall', FIG/f'emodb{task}_recall.png'))
            for k, v in a[task].items():
                if k == 'cmer-default': continue
                made.append(plot_confusion(v['confusion'], cl, f'EmoDB {task} classes (LOSpkO): {LABEL[k]}', FIG/f'emodb{task}_confusion_{k}.png'))
    f = R.get('fer')
    if f:
        made.append(plot_confusion(f['confusion7'], f['classes7'], 'FER2013 official test split: shipped frame encoder, 7 classes', FIG/'fer_confusion7.png'))
        made.append(plot_confusion(f['confusion4'], f['classes4'], 'FER2013 test: shipped frame encoder, 4 IEMOCAP classes', FIG/'fer_confusion4.png'))
    return [str(Path(p).relative_to(HERE)) for p in made]


LABEL = {'svm': 'MFCC mean/std + SVM', 'cmer-default': 'cmer audio, library defaults', 'cmer-tuned': 'cmer audio, chosen settings'}


def _ablation_md(cells, synthetic=False) -> str:
    from cmer.ablation import ablation_table
    df = pd.DataFrame(cells)
    for k in ('ua_mean', 'ua_std', 'wa_mean', 'wa_std'):
        if k not in df: df[k] = np.nan
    df['off'] = df.off.astype(object).where(df.off.notna(), None)
    tab = ablation_table(df, 'ua')
    rows = ["| modalities | " + ' | '.join(tab.columns) + " |", "|---|" + '---|' * len(tab.columns)]
    rows += [f"| {i} | " + ' | '.join(str(v) for v in r) + " |" for i, r in zip(tab.index, tab.itertuples(index=False))]
    return '\n'.join(rows)


def _verdict(cells, metric='ua') -> str:
    df = pd.DataFrame([c for c in cells if c['active']])
    full = df[df.off.isna()].set_index('subset')[f'{metric}_mean']
    lines = []
    for r in df[df.off.notna()].itertuples():
        d = getattr(r, f'{metric}_mean') - full.get(r.subset, np.nan)
        sd = getattr(r, f'{metric}_std')
        word = 'helps' if d < -max(0.01, 0.5 * sd) else 'hurts' if d > max(0.01, 0.5 * sd) else 'makes no clear difference'
        lines.append(f"`{r.off}` {word} ({'-' if d > 0 else '+' if d < 0 else '±'}{abs(d):.3f} UA when present; fold std {sd:.3f})")
    return '; '.join(lines)


def report(R: dict, figs: list[str], args, t_total: float) -> str:
    M = R['machine']
    L = [f"# Real-data evidence", "",
         f"Regenerate with `{R['command']}` (about {t_total / 60:.0f} min here"
         + ("; `--demo-out` reused a demo corpus and its features built beforehand, which `python benchmarks/real_data.py` "
            "builds itself, about 11 more minutes" if '--demo-out' in R['command'] else '') + f"). Machine: {M['cpus']} CPUs ({M['cpu']}), "
         f"{M['python']} / torch {M['torch']}, {R['jobs']} worker process(es) with one torch thread each; run {R['date']}. "
         f"The machine is shared with other work, so times are upper bounds. Load average at start {M['load_start']}, at end {M['load_end']}.",
         "", "Nothing here is tuned on a test fold: the baselines choose their hyper-parameters (C, SVM kernel) by UA on an inner "
         "split of the training folds grouped by session or speaker; cmer early-stops on a held-out training speaker; the EmoDB "
         "audio settings were chosen by validation UA on held-out training speakers (see section 2). UA = unweighted accuracy "
         "(mean per-class recall), WA = accuracy, wF1 = weighted F1; mean ± sample std over the test folds.", ""]
    if R.get('errors'): L += ["**Parts that FAILED in this run:** " + '; '.join(f"{k}: {v}" for k, v in R['errors'].items()), ""]
    if R.get('quick'): L += ["**QUICK RUN (`--quick`): few epochs, one sentence encoder, small grids: the numbers are smoke-test values, not results.**", ""]
    L += ["## Headline", "", "| data (protocol) | cmer | best baseline |", "|---|---|---|"]
    L += R['headline'] + [""]
    newer = [(f, what) for f, what in [('fusion.md', 'does fusion work? each modality alone, late and early fusion, the fused model and the fused '
                                        'model on each modality, on PAIRED (MFCC and Whisper audio) and SYNTHETIC (`python benchmarks/fusion.py`)'),
                                       ('context.md', 'dialogue context on the real IEMOCAP transcripts, with baselines given the same context '
                                        '(`python benchmarks/context.py`)'),
                                       ('emodb_audio.md', 'EmoDB speech on MFCC and Whisper encoder features, cmer next to pooled-statistics '
                                        'SVM / logistic regression, and the packing check (`python benchmarks/emodb_audio.py`)')]
             if (HERE/f).exists()]
    if newer: L += ["Measured by their own scripts, newer than this report's run:", "", *[f"- [{f}]({f}): {what}" for f, what in newer], ""]
    t = R.get('text')
    if t:
        L += [f"## 1. Text: real IEMOCAP transcripts, leave-one-session-out ({t['n']} utterances, 4 classes)", "",
              f"Back-translated view: apertium {t['back_translation']['chain']} ({t['back_translation']['changed']} of {t['n']} transcripts changed; "
              f"{t['back_translation']['seconds']:.0f} s, hops cached beforehand: {[h['cached'] for h in t['back_translation']['hops']]}). "
              "cmer = the unified model in text-only mode (MLP encoder, default `ModelConfig`/`TrainConfig`); 'LR' = logistic regression.", "",
              "| method | UA | WA | wF1 |", "|---|---|---|---|"]
        for k, v in t['loso'].items(): L.append(f"| {k} | {pm(v['summary'])} | {pm(v['summary'], 'wa')} | {pm(v['summary'], 'weighted_f1')} |")
        L += ["", "Per fold (UA):", "", "| method | " + ' | '.join(f['name'] for f in next(iter(t['loso'].values()))['folds']) + " |",
              "|---|" + '---|' * 5]
        for k, v in t['loso'].items(): L.append(f"| {k} | " + ' | '.join(f"{f['ua']:.3f}" for f in v['folds']) + " |")
        L += ["", "![per-class recall](figures/text_recall.png)", "![confusion cmer](figures/text_confusion_cmer.png) ![confusion tfidf](figures/text_confusion_tfidf.png)", "",
              f"Time (summed over the MiniLM and mpnet workers): inputs (back-translation, embeddings) {t['seconds']['prep']:.0f} s, baselines {t['seconds']['baselines']:.0f} s, cmer {t['seconds']['cmer']:.0f} s.", ""]
    a = R.get('emodb')
    if a:
        L += ["## 2. Speech: EmoDB, leave-one-speaker-out (10 speakers)", "",
              "MFCC 20 × T as cmer's mfcc step computes them (25 ms windows, 10 ms hop). 'chosen settings' = "
              f"`ModelConfig({', '.join(f'{k}={v!r}' for k, v in AUDIO_MC.items())})`, `TrainConfig({', '.join(f'{k}={v}' for k, v in AUDIO_TC.items())})`: "
              "per-utterance statistics pooling next to attention, Δ and ΔΔ computed in the model, 128 convolution channels, "
              "longer training with early stopping. They were chosen by the mean *validation* UA (one held-out training speaker per fold) "
              "over both tasks among 32 runs of a sweep (`results/emodb_sweep.json`, run on a 16-core machine); the test UA of the "
              "sweep was recorded but not used to choose. The library defaults are unchanged.", "",
              "| task | method | UA | WA | wF1 | time |", "|---|---|---|---|---|---|"]
        for task in ('7', '4'):
            for k, v in a[task].items():
                L.append(f"| {task} classes ({v['n']} clips) | {LABEL[k]} | {pm(v['summary'])} | {pm(v['summary'], 'wa')} | {pm(v['summary'], 'weighted_f1')} | {v['seconds']:.0f} s |")
        try:
            sw = json.loads((Path(__file__).resolve().parent/'results'/'emodb_sweep.json').read_text())
            d7, d4 = ([r for r in sw['runs'] if r['task'] == t and not r['model_config'] and not r['train_config']][0] for t in ('7', '4'))
            L += ["", f"For comparison, the library defaults (`ModelConfig()`, `TrainConfig()`) in the sweep (16-core machine, torch 2.11): UA {d7['test_ua']:.3f} ± {d7['test_ua_std']:.3f} (7 classes), "
                  f"{d4['test_ua']:.3f} ± {d4['test_ua_std']:.3f} (4 classes)."]
        except Exception: pass
        L += ["", "SVM hyper-parameters chosen per fold (inner 3-fold split over the training speakers): " +
              '; '.join(f"{task}: " + ', '.join(f"{f['params']['kernel']} C={f['params']['C']:g}" for f in a[task]['svm']['folds']) for task in ('7', '4')), "",
              "![recall 7](figures/emodb7_recall.png) ![recall 4](figures/emodb4_recall.png)", "",
              "![cm](figures/emodb7_confusion_cmer-tuned.png) ![cm](figures/emodb7_confusion_svm.png)", "",
              "![cm](figures/emodb4_confusion_cmer-tuned.png) ![cm](figures/emodb4_confusion_svm.png)", ""]
    f = R.get('fer')
    if f:
        L += ["## 3. Faces: FER2013 official test split (PrivateTest)", "",
              f"The shipped frame encoder (`cmer.fer.load_fer_encoder()`, trained on the training split only): 7-class accuracy "
              f"**{f['acc7']:.4f}** on {f['n']} faces; 4 IEMOCAP classes (neutral/angry/sad/happy faces, argmax over those four) **{f['acc4']:.4f}** on {f['n4']}. ({f['seconds']:.0f} s)", "",
              "![fer7](figures/fer_confusion7.png) ![fer4](figures/fer_confusion4.png)", ""]
    if t or R.get('demo'):
        L += ["## 4. Does the multitask + contrastive + autoencoder recipe help?", ""]
    if t:
        L += ["**Real text** (IEMOCAP transcripts, MiniLM + back-translated view, leave-one-session-out), UA mean ± std over folds, "
              "in brackets the change against the full model:", "", _ablation_md(t['ablation']), "",
              "Verdict on real text: " + _verdict(t['ablation']) + ".", ""]
    dm = R.get('demo')
    if dm:
        L += [f"**SYNTHETIC demo corpus** ({dm['n']} utterances, modalities {dm['modalities']}; espeak-ng speech, FER2013 faces, real transcripts; "
              "SYNTHETIC: these numbers only show what the model does with the planted signal, not real emotion recognition). "
              "Every modality subset with the full model, and the full three-modality model with each term off:", "",
              _ablation_md(dm['cells'], True), "", "Verdict on the SYNTHETIC corpus: " + _verdict(dm['cells']) + ".", "",
              (f"Time: the demo corpus and its features were REUSED from `{dm['out']}` (built earlier by the same code: `cmer.demo.demo_corpus` "
               "defaults + `cmer.chain.run_upstream`; not part of this run's time); ablation {:.0f} s.".format(dm['seconds']['ablation']) if dm.get('reused') else
               f"Time: demo corpus and its features {dm['seconds']['chain']:.0f} s, ablation {dm['seconds']['ablation']:.0f} s."), ""]
    if t:
        L += ["## 5. The original's protocol: random 60/20/20 utterance split vs leave-one-session-out (real text)", "",
              "The random split puts the same speakers (and the same scripted lines) in training and test; "
              "selection uses its 20 % validation part.", "", "| method | random split UA | random split WA | LOSO UA | LOSO WA |", "|---|---|---|---|---|"]
        for k, v in t['random'].items():
            lo = t['loso'].get(k, {}).get('summary', {})
            L.append(f"| {k} | {pm(v['summary'])} | {pm(v['summary'], 'wa')} | {pm(lo)} | {pm(lo, 'wa')} |")
        L += ["", f"Time: {t['seconds']['random']:.0f} s.", ""]
    L += ["## Run time", "", "| part | seconds |", "|---|---|"]
    for k, v in R['seconds'].items(): L.append(f"| {k} | {v:.0f} |")
    L += [f"| **total (wall)** | **{t_total:.0f}** |", "", "Machine-readable results: `results/real_data.json`.", ""]
    return '\n'.join(L)


def headline(R) -> list[str]:
    H = []
    t = R.get('text')
    if t:
        L = t['loso']; cm = max((k for k in L if k.startswith('cmer')), key=lambda k: L[k]['summary']['ua']['mean'])
        bl = max((k for k in L if not k.startswith('cmer')), key=lambda k: L[k]['summary']['ua']['mean'])
        H.append(f"| IEMOCAP transcripts, 4 cl. (LOSO) | UA {pm(L[cm]['summary'])} ({cm.replace('cmer ', '')}) | UA {pm(L[bl]['summary'])} ({bl}) |")
        H.append(f"| same, random 60/20/20 split (speaker-dependent) | UA {pm(t['random']['cmer minilm + back-translation']['summary'])} | "
                 f"UA {pm(t['random']['TF-IDF + LR']['summary'])} (TF-IDF + LR) |")
    a = R.get('emodb')
    if a:
        for task in ('7', '4'):
            H.append(f"| EmoDB speech, {task} cl. (leave-one-speaker-out) | UA {pm(a[task]['cmer-tuned']['summary'])} | UA {pm(a[task]['svm']['summary'])} (MFCC stats + SVM) |")
    f = R.get('fer')
    if f: H.append(f"| FER2013 faces, official test | acc {f['acc7']:.3f} (7 cl.), {f['acc4']:.3f} (4 cl.) | – |")
    return H


def write_report(R: dict):
    "Headline, figures and README.md from the results."
    from cmer.core import atomic_json, atomic_write
    R['headline'] = headline(R)
    R['figures'] = figures(R)
    atomic_json(RES/'real_data.json', R)
    atomic_write(HERE/'README.md', report(R, R['figures'], None, R['seconds_total']))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='smoke test: few epochs, MiniLM only, small grids (numbers not meaningful)')
    ap.add_argument('--jobs', type=int, default=2, help='worker processes (each uses one torch thread)')
    ap.add_argument('--work', default=None, help='cache folder (default: <model cache>/../real_data)')
    ap.add_argument('--fresh', action='store_true', help='clear the cache folder first')
    ap.add_argument('--demo-out', default=None, help='reuse this chain output root of a demo corpus (default: build the demo corpus and its features in --work)')
    ap.add_argument('--sections', default='text,audio,faces,demo', help='comma-separated subset of text,audio,faces,demo')
    ap.add_argument('--audio-defaults', action='store_true', help="also run cmer's audio encoder with the library defaults on EmoDB (the sweep has them)")
    ap.add_argument('--report-only', action='store_true', help='redo the figures and README.md from results/real_data.json')
    ap.add_argument('--report-dir', default=None, help='where README.md, figures/ and results/ go (default: the benchmarks folder)')
    a = ap.parse_args(argv)
    global HERE, FIG, RES
    if a.report_dir: HERE = Path(a.report_dir).resolve(); FIG, RES = HERE/'figures', HERE/'results'
    from cmer.core import get_config, atomic_json, atomic_write
    if a.report_only:
        R = json.loads((RES/'real_data.json').read_text()); write_report(R)
        print('\n'.join(["| data (protocol) | cmer | best baseline |", "|---|---|---|"] + R['headline'])); return
    import torch
    try: data_dir()
    except Exception as e: sys.exit(f"real_data: {e}")
    work = Path(a.work) if a.work else get_config().models_dir.parent/'real_data'
    if a.fresh and work.exists(): shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    secs = set(a.sections.split(','))
    t0 = time.perf_counter(); load0 = os.getloadavg()
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor()) if Path('/proc/cpuinfo').exists() else platform.processor()
    R = dict(command=' '.join(['python', 'benchmarks/real_data.py', *(sys.argv[1:] if argv is None else argv)]), quick=a.quick, jobs=a.jobs,
             date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
             machine=dict(cpus=os.cpu_count(), cpu=cpu, python=platform.python_version(), torch=torch.__version__,
                          load_start=' '.join(f'{x:.2f}' for x in load0), nice=os.nice(0)), seconds={})
    jobs = []   # (key, fn, args), longest first so that two workers finish together
    if 'text' in secs:
        jobs.append(('text', run_text, (work, a.quick, 'minilm')))
        if not a.quick: jobs.append(('text-mpnet', run_text, (work, a.quick, 'mpnet')))
    if 'demo' in secs: jobs.append(('demo', run_demo_ablation, (work, a.quick, a.demo_out)))
    if 'audio' in secs:
        emodb_mfcc(work)   # once, before the workers share the cache
        for which in ('cmer-tuned', 'svm') + (('cmer-default',) if a.audio_defaults else ()):
            for task in ('7', '4'): jobs.append((f'emodb/{task}/{which}', run_emodb_task, (work, task, which, a.quick)))
    if 'faces' in secs: jobs.append(('fer', run_fer, (work, a.quick)))
    log(f"{len(jobs)} jobs on {a.jobs} worker(s); cache {work}")
    results = {}
    errors = {}
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            futs = {k: ex.submit(fn, *args) for k, fn, args in jobs}
            for k, f in futs.items():
                try: results[k] = f.result()
                except Exception as e: errors[k] = f"{type(e).__name__}: {e}"; log(f"job {k} FAILED: {errors[k]}")
    else:
        for k, fn, args in jobs:
            try: results[k] = fn(*args)
            except Exception as e: errors[k] = f"{type(e).__name__}: {e}"; log(f"job {k} FAILED: {errors[k]}")
    R['errors'] = errors
    atomic_json(work/'results_raw.json', results)   # everything measured, before any reporting
    if 'text' in results:
        R['text'] = results['text']; R['seconds']['1+4+5 text: MiniLM part (inputs, TF-IDF, LR, cmer, ablation, random split)'] = results['text']['seconds']['total']
        if 'text-mpnet' in results:
            mp = results['text-mpnet']; R['text_mpnet_seconds'] = mp['seconds']
            R['text']['loso'] = {k: v for k, v in R['text']['loso'].items() if not k.startswith('cmer')} | {k: v for k, v in mp['loso'].items() if not k.startswith('cmer')} \
                | {k: v for k, v in R['text']['loso'].items() if k.startswith('cmer')} | {k: v for k, v in mp['loso'].items() if k.startswith('cmer')}
            for k in ('prep', 'baselines', 'cmer'): R['text']['seconds'][k] += mp['seconds'][k]
            R['seconds']['1 text: mpnet part (embeddings, LR, cmer)'] = mp['seconds']['total']
    if any(k.startswith('emodb/') for k in results):
        R['emodb'] = {task: {w: results[f'emodb/{task}/{w}'] for w in ('cmer-tuned', 'cmer-default', 'svm') if f'emodb/{task}/{w}' in results} for task in ('7', '4')}
        R['seconds']['2 EmoDB (sum over its jobs)'] = sum(v['seconds'] for k, v in results.items() if k.startswith('emodb/'))
    if 'fer' in results: R['fer'] = results['fer']; R['seconds']['3 FER2013'] = results['fer']['seconds']
    if 'demo' in results: R['demo'] = results['demo']; R['seconds']['4 demo corpus (SYNTHETIC): build + features + ablation'] = results['demo']['seconds']['total']
    t_total = time.perf_counter() - t0
    R['machine']['load_end'] = ' '.join(f'{x:.2f}' for x in os.getloadavg())
    R['seconds_total'] = t_total
    RES.mkdir(parents=True, exist_ok=True)
    atomic_json(RES/'real_data.json', R)          # first the numbers, so that --report-only can redo the rest
    write_report(R)
    log(f"done in {t_total:.0f} s: {HERE/'README.md'}, {RES/'real_data.json'}, {len(figs)} figures")
    print('\n'.join(["| data (protocol) | cmer | best baseline |", "|---|---|---|"] + R['headline']))


if __name__ == '__main__':
    main()
