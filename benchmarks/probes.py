"""cmer against a linear probe on its own features, every modality, every fusion (issue 18 item 2).

For every row, cmer's own model and the probe are trained and tested on the same features and the same folds:
- the probe (cmer.baselines.probe_cv): logistic regression, standardised, class-balanced, on pooled features, with
  its pooling (mean, or mean and std over time) and C (1e-4 ... 10) chosen together on inner folds of the training
  part grouped by speaker, refit on the whole training part;
- cmer: the library defaults (ModelConfig(), TrainConfig(): 'stats' branches, each branch's L2 penalty and the
  fusion weights chosen on inner folds of the training speakers), through cmer.evaluate.cross_validate, the code of
  the evaluate step. Dialogue context is off on PAIRED and EmoDB (context=0: PAIRED's dialogs are label-random, an
  EmoDB clip has none) and on (the default, 16 previous turns) for the IEMOCAP transcripts, where the probe gets the
  same context (the mean embedding of the same- and the other-speaker turns among the k previous, k chosen on inner
  folds from 0, 4, 8, 16).

Rows (UA, mean ± sd over the test folds; PAIRED: over every (pairing seed, fold), the mean of the seeds' means):
- PAIRED (real signals paired by label; the modalities are independent given the label; not a real multimodal
  recording), built with `cmer demo-corpus --speech emodb --seed S` for each pairing seed and the chain's feature
  steps: audio MFCC, audio Whisper, video (FER2013 face embeddings), text (MiniLM); leave-one-session-out;
- EmoDB (real speech) 7 and 4 classes, leave-one-speaker-out, cmer's default audio features (Whisper encoder, the
  window and layer step 04 uses by default, and those of the default model of `cmer predict`);
- IEMOCAP transcripts (real), 4 classes, leave-one-session-out, past context: MiniLM sentence embeddings with the lexical
  view appended (the chain's text features; the view fitted in each fold on its training transcripts only), and MiniLM
  alone (--text-features adds rows on mpnet or on MiniLM and mpnet concatenated).
Fused rows (PAIRED, MFCC and Whisper audio): cmer's fused model, `late` = late fusion (product of the probabilities)
of cmer's own single-modality models, `probe_late` = the same of the three probes, `probe_early` = the probe on the
concatenated pooled features of all three.

    python benchmarks/probes.py [--seeds 42,1,2] [--only paired,emodb,text] [--text-features minilm+lexical,minilm] [--work /tmp/cmer_bench]

Builds what it needs under --work (the PAIRED corpora and their feature stores, EmoDB's Whisper features, the
IEMOCAP embeddings) and writes benchmarks/results/probes.json and benchmarks/probes.md; a part named in --only
replaces its rows, the others are kept.
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, time
os.environ.setdefault('OMP_NUM_THREADS', '1')
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PAIRED = 'PAIRED (real signals paired by label; independent given the label; not a real multimodal recording)'
T0 = time.perf_counter()
def log(*a): print(f"[{time.perf_counter() - T0:7.0f}s]", *a, flush=True)


def cmer_bin() -> str:
    return str(Path(sys.executable).parent/'cmer')


def paired_store(seed:int, work:Path) -> Path:
    "The chain's feature store of the PAIRED corpus of pairing `seed` (built when missing)."
    corpus, out = work/f'paired{seed}', work/f'paired{seed}_out'
    if not (corpus/'demo_corpus.json').exists():
        log(f"building the PAIRED corpus, seed {seed}")
        subprocess.run([cmer_bin(), 'demo-corpus', str(corpus), '--speech', 'emodb', '--seed', str(seed)], check=True)
    log(f"the chain's features of the PAIRED corpus, seed {seed} (steps that are up to date skip themselves)")
    subprocess.run([cmer_bin(), 'run', '--corpus', str(corpus), '--out', str(out), '--steps', 'corpus', 'mfcc', 'frames', 'frame_embed',
                    'text_embed', '-p', 'audio_features=both', '--checks', 'never'], check=True)
    return out


def text_name(data) -> str:
    "The name of the text features `data` holds: MiniLM, with the lexical view when the chain appended one."
    lex = (data.feats['text'].meta.get('featurizer') or {}).get('lexical')
    return f"MiniLM + lexical view ({lex})" if lex else 'MiniLM'


def pooled_settings(data, m:str) -> dict:
    "The probe's feature settings of modality `m`: mean or mean+std pooling of a sequence, the vector itself otherwise."
    if not data.feats[m].ragged: return {'vector': data.feats[m].data[data.rows[m]]}
    return {p: data.pooled(m, 'orig', p)[data.rows[m]] for p in ('mean', 'meanstd')}


def paired_part(seeds:list[int], work:Path) -> tuple[list, list, dict]:
    "Rows and fused rows of PAIRED, per seed and pooled over seeds."
    import torch
    from cmer.train import load_data, TrainConfig
    from cmer.model import ModelConfig
    from cmer.evaluate import cross_validate, late_fusion
    from cmer.baselines import probe_cv
    from cmer.metrics import emotion_metrics
    from cmer.protocols import loso_folds
    torch.set_num_threads(1)
    per = {}   # (features, modality) -> {'cmer': [per seed: fold UAs], 'probe': ...}; ('fused', audio) -> ...
    for seed in seeds:
        out = paired_store(seed, work)
        for audio in ('mfcc', 'whisper'):
            data = load_data(out, audio=audio); folds = loso_folds(data.table); y = data.labels
            spk = data.table.speaker.astype(str).to_numpy()
            t = time.perf_counter()
            cv = cross_validate(data, folds, ModelConfig(context=0), TrainConfig(seed=42), unimodal=True, subsets=True, progress=False)
            tc = time.perf_counter() - t
            probes = {m: probe_cv(pooled_settings(data, m), y, folds, spk) for m in data.modalities}
            early = probe_cv({s: np.concatenate([pooled_settings(data, m)[s if data.feats[m].ragged else 'vector'] for m in data.modalities], 1)
                              for s in ('mean', 'meanstd')}, y, folds, spk)
            for m, code in zip(data.modalities, ('A', 'V', 'T')):
                feat = {'audio': audio, 'video': 'FER face embeddings', 'text': text_name(data)}[m]
                if m != 'audio' and audio == 'whisper': continue          # video and text rows come from the first run
                r = per.setdefault((feat, m), dict(cmer=[], probe=[], probe_settings=[], cmer_l2=[]))
                r['cmer'].append([f['unimodal'][code]['ua'] for f in cv['folds']]); r['probe'].append([f['ua'] for f in probes[m]['folds']])
                r['probe_settings'].append([f"{f['setting']} C={f['params']['C']:g}" for f in probes[m]['folds']])
            te_ua = lambda P: [emotion_metrics(y[f['test']], P[f['test']].argmax(1))['ua'] for f in folds]
            plate = late_fusion([probes[m]['prob'] for m in data.modalities])
            r = per.setdefault(('fused', audio), dict(cmer=[], late=[], probe_late=[], probe_early=[], gates=[], fused_on={}))
            r['cmer'].append([f['ua'] for f in cv['folds']]); r['late'].append([f['late_fusion']['ua'] for f in cv['folds']])
            r['probe_late'].append(te_ua(plate)); r['probe_early'].append([f['ua'] for f in early['folds']])
            r['gates'].append([f['gates']['weights'] for f in cv['folds']])
            for code in ('A', 'V', 'T'): r['fused_on'].setdefault(code, []).append([f['subsets'][code]['ua'] for f in cv['folds']])
            log(f"PAIRED seed {seed} {audio}: fused {np.mean(r['cmer'][-1]):.3f}, late {np.mean(r['late'][-1]):.3f}, probe late "
                f"{np.mean(r['probe_late'][-1]):.3f}, probe early {np.mean(r['probe_early'][-1]):.3f}; alone cmer/probe "
                + ', '.join(f"{m} {np.mean([f['unimodal'][c]['ua'] for f in cv['folds']]):.3f}/{probes[m]['summary']['ua']['mean']:.3f}"
                            for m, c in zip(data.modalities, 'AVT')) + f" (cmer {tc:.0f} s)")
    rows, fused = [], []
    for (feat, m), r in per.items():
        if feat == 'fused': continue
        rows.append(dict(data=f"PAIRED ({len(seeds)} pairing seeds)", features=feat, modality=m, **stats(r, ('cmer', 'probe')),
                         per_seed={k: [float(np.mean(v)) for v in r[k]] for k in ('cmer', 'probe')}, probe_settings=r['probe_settings']))
    text = next(feat for (feat, m) in per if m == 'text')
    for (feat, audio), r in per.items():
        if feat != 'fused': continue
        fused.append(dict(data=f"PAIRED ({len(seeds)} pairing seeds)", features=f"{audio} audio, FER face embeddings, {text}", **stats(r, ('cmer', 'late', 'probe_late', 'probe_early')),
                          per_seed={k: [float(np.mean(v)) for v in r[k]] for k in ('cmer', 'late', 'probe_late', 'probe_early')},
                          fused_on={c: float(np.mean(v)) for c, v in r['fused_on'].items()}, gates=r['gates']))
    from cmer.chain import pipeline_steps
    layer = next(s for s in pipeline_steps() if s.name == 'mfcc').params.get('whisper_layer')
    return rows, fused, dict(seeds=seeds, paired_whisper='the last layer' if layer is None else f'layer {layer}',
                             paired_when=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))


def stats(r:dict, keys) -> dict:
    "For each key: the mean of the seeds' fold means, and the sd over every (seed, fold)."
    out = {}
    for k in keys:
        allv = np.concatenate([np.asarray(v, float) for v in r[k]])
        out[k] = float(np.mean([np.mean(v) for v in r[k]])); out[f'{k}_std'] = float(allv.std(ddof=1)) if len(allv) > 1 else float('nan')
        out[f'{k}_folds'] = [list(map(float, v)) for v in r[k]]
    return out


def emodb_part(work:Path) -> list:
    "EmoDB 7 and 4 classes with cmer's default audio features: the chain's Whisper window and the default model's."
    from whisper_window import features, evaluate
    from cmer.corpus import read_emodb
    from cmer.mfcc import AudioSettings
    from cmer.chain import pipeline_steps
    from cmer.default_model import DEFAULT_AUDIO
    chain = next(s for s in pipeline_steps() if s.name == 'mfcc').params
    clips = read_emodb(); rows = []
    for window, layer, who in dict.fromkeys([(chain['whisper_window'], chain.get('whisper_layer'), "the chain's default"),
                                             (DEFAULT_AUDIO['whisper_window'], DEFAULT_AUDIO.get('whisper_layer'), "the default model's")]):
        feats, sec = features(window, clips, work, AudioSettings().whisper_fixed_s, layer)
        at = 'the last layer' if layer is None else f'layer {layer}'
        for c in ('7', '4'):
            r = evaluate(feats, clips, c)
            rows.append(dict(data=f"EmoDB (real speech), {c} classes, leave-one-speaker-out", features=f"Whisper encoder ({window} window, {at}: {who})", modality='audio',
                             **stats(dict(cmer=[r['cmer']], probe=[r['probe']]), ('cmer', 'probe')), probe_settings=r['probe_settings'], cmer_l2=r['cmer_l2']))
            log(f"EmoDB {c}, {window}, {at}: cmer {rows[-1]['cmer']:.3f}, probe {rows[-1]['probe']:.3f}")
    return rows


TEXT_FEATURES = {'minilm': 'MiniLM', 'mpnet': 'mpnet', 'minilm+mpnet': 'MiniLM and mpnet, concatenated',
                 'minilm+lexical': "MiniLM + lexical view (the chain's: word 1-2-gram TF-IDF on 512 SVD components, fitted on each fold's training transcripts)"}


def text_embeddings(work:Path, table, model:str):
    "Sentence embeddings of `table.transcript` by `model` ('minilm', 'mpnet', or 'minilm+mpnet': both, concatenated), cached under `work`."
    from cmer.core import make_features, save_features, load_features
    if '+' in model:
        parts = [text_embeddings(work, table, m) for m in model.split('+')]
        return make_features(table.utt_id.tolist(), np.hstack([f.data for f in parts]), meta=dict(kind='text', model=model), ragged=False)
    p = work/f'iemocap_{model}.npz'
    if not p.exists():
        from cmer.text_embed import TextFeaturizer
        X = TextFeaturizer(model=model).transform(table.transcript.tolist())
        save_features(p, make_features(table.utt_id.tolist(), X, meta=dict(kind='text', model=model), ragged=False))
    f = load_features(p)
    if list(f.ids) != table.utt_id.tolist(): raise ValueError(f"{p}: its utterances are not the table's; delete it to rebuild")
    return f


def text_part(work:Path, features:str='minilm') -> list:
    "IEMOCAP transcripts with past context: cmer's text model and the probe with the same context, on the sentence embeddings `features` (`…+lexical`: with the lexical view, fitted per fold on its training transcripts)."
    import torch
    from cmer.core import get_config, make_features
    from cmer.default_model import iemocap_text_table, DEFAULT_CLASSES
    from cmer.text_embed import LexicalMap, LEXICAL_DIM, lexical_dim
    from cmer.train import make_data, TrainConfig, predict
    from cmer.model import ModelConfig
    from cmer.evaluate import cross_validate
    from cmer.metrics import emotion_metrics
    from cmer.baselines import probe_cv
    from cmer.context import context_index, context_mean
    from cmer.protocols import loso_folds
    torch.set_num_threads(1)
    table = iemocap_text_table()                          # iemocap.csv, 4 classes, transcripts that are not empty
    lexical = features.endswith('+lexical')
    emb = text_embeddings(work, table, features.removesuffix('+lexical'))
    data = make_data(table, {'text': emb}, DEFAULT_CLASSES)
    folds = loso_folds(data.table); y = data.labels; groups = data.table.speaker.astype(str).to_numpy()
    idx = {k: context_index(data.table, k) for k in (4, 8, 16)}
    cmer_ua, hidden, probe_folds, tc, lex_info = [], [], [], 0.0, []
    impro = data.table.utt_id.str.contains('impro').to_numpy(); impro_ua = dict(cmer=[], probe=[])   # improvised dialogues: no script repeats across sessions
    for f in folds:
        feats = emb
        if lexical:                                       # the lexical view of this fold: fitted on its training transcripts only
            fit = set(data.table.utt_id.to_numpy()[f['train']])
            texts = [t for u, t in zip(table.utt_id, table.transcript) if u in fit]
            lm = LexicalMap.fit(texts, lexical_dim(len(texts), LEXICAL_DIM), seed=get_config().seed)   # the size step 07 gives a corpus of that many
            feats = make_features(table.utt_id.tolist(), np.hstack([emb.data, lm.transform(table.transcript.tolist())]), meta=dict(kind='text', model=features), ragged=False)
            lex_info.append(dict(fold=f['name'], terms=len(lm.vocabulary), dim=lm.dim))
        data_f = make_data(table, {'text': feats}, DEFAULT_CLASSES)
        assert (data_f.table.utt_id.to_numpy() == data.table.utt_id.to_numpy()).all()
        t = time.perf_counter(); cv = cross_validate(data_f, [f], ModelConfig(), TrainConfig(), subsets=False, keep_models=True, progress=False); tc += time.perf_counter() - t
        cmer_ua.append(cv['folds'][0]['ua'])
        # the same model with every speaker unknown, as `cmer predict` reads a conversation (no diarization)
        data_h = make_data(data_f.table.assign(speaker=None), {'text': feats}, DEFAULT_CLASSES)
        hidden.append(emotion_metrics(y[f['test']], predict(cv['models'][0], data_h, np.asarray(f['test']))['pred'])['ua'])
        E = feats.data[data_f.rows['text']]
        X = {'k=0': E} | {f'k={k}': np.hstack([E, *context_mean(E, *idx[k])]) for k in (4, 8, 16)}
        pr = probe_cv(X, y, [f], groups); probe_folds += pr['folds']
        te = np.asarray(f['test']); im = te[impro[te]]; pc = cv['predictions']; pc = pc[pc.utt_id.str.contains('impro')]
        impro_ua['cmer'].append(emotion_metrics(pc.label.to_numpy(), pc.pred.to_numpy())['ua'])
        impro_ua['probe'].append(emotion_metrics(y[im], pr['prob'][im].argmax(1))['ua'])
        log(f"IEMOCAP text ({features}) {f['name']}: cmer {cmer_ua[-1]:.3f} (speakers unknown {hidden[-1]:.3f}), probe {probe_folds[-1]['ua']:.3f}")
    row = dict(data="IEMOCAP transcripts (real), 4 classes, leave-one-session-out, past context", features=TEXT_FEATURES[features], modality='text',
               **stats(dict(cmer=[cmer_ua], probe=[[f['ua'] for f in probe_folds]]), ('cmer', 'probe')),
               probe_settings=[f"{f['setting']} C={f['params']['C']:g}" for f in probe_folds], cmer_seconds=round(tc, 1),
               cmer_speakers_unknown=float(np.mean(hidden)), cmer_speakers_unknown_std=float(np.std(hidden, ddof=1)), cmer_speakers_unknown_folds=hidden,
               **{f'{k}_impro': float(np.mean(v)) for k, v in impro_ua.items()}, **{f'{k}_impro_std': float(np.std(v, ddof=1)) for k, v in impro_ua.items()},
               **(dict(lexical=lex_info) if lexical else {}))
    log(f"IEMOCAP text ({features}): cmer {row['cmer']:.3f} (speakers unknown {row['cmer_speakers_unknown']:.3f}), probe {row['probe']:.3f} (cmer {tc:.0f} s)")
    return [row]


def pm(v, s): return f"{v:.3f} ± {s:.3f}"


def write_md(R:dict, path:Path):
    L = ["# cmer against a linear probe on its own features", "", "Regenerate with `python benchmarks/probes.py`. " + ' '.join(__doc__.split('\n\n')[1].split()), "",
         "| data | features | modality | cmer | probe | cmer − probe | goal (≥ −0.01) |", "|---|---|---|---|---|---|---|"]
    for r in R['rows']:
        d = r['cmer'] - r['probe']
        L.append(f"| {r['data']} | {r['features']} | {r['modality']} | {pm(r['cmer'], r['cmer_std'])} | {pm(r['probe'], r['probe_std'])} | {d:+.3f} | {'met' if d >= -0.01 else 'MISSED'} |")
    L += ["", "| data | features | cmer fused | late (cmer's own models) | probe late | probe early | goal: cmer ≥ max(late, probe late) − 0.01 |", "|---|---|---|---|---|---|---|"]
    for f in R['fused']:
        g = f['cmer'] - max(f['late'], f['probe_late'])
        L.append(f"| {f['data']} | {f['features']} | {pm(f['cmer'], f['cmer_std'])} | {pm(f['late'], f['late_std'])} | {pm(f['probe_late'], f['probe_late_std'])} | "
                 f"{pm(f['probe_early'], f['probe_early_std'])} | {g:+.3f}: {'met' if g >= -0.01 else 'MISSED'} |")
    L += ["", "Per pairing seed (PAIRED, mean over the 5 folds):", ""]
    for r in R['rows'] + R['fused']:
        if 'per_seed' in r: L.append(f"- {r['features']} {r.get('modality', 'fused')}: " + '; '.join(f"{k} " + ' / '.join(f"{v:.3f}" for v in vs) for k, vs in r['per_seed'].items()))
    for r in R['rows']:
        if 'cmer_speakers_unknown' in r:
            L += ["", f"{r['data']}: cmer's same models with every speaker unknown at test time (as `cmer predict` reads a conversation, "
                  f"without diarization; the context weights for unknown speakers are fitted after training, `TrainConfig.context_unknown='refit'`): "
                  f"{pm(r['cmer_speakers_unknown'], r['cmer_speakers_unknown_std'])} (" + ' / '.join(f"{v:.3f}" for v in r['cmer_speakers_unknown_folds']) + ")."]
        if 'cmer_impro' in r:
            L += ["", f"{r['data']}, {r['features']}: UA on the improvised dialogues alone (no script repeats across sessions): cmer "
                  f"{pm(r['cmer_impro'], r['cmer_impro_std'])}, probe {pm(r['probe_impro'], r['probe_impro_std'])}."]
    L += ["", f"PAIRED rows: the chain's features of {R.get('paired_when', 'before 2026-12-04 19:30 UTC')}, Whisper audio from "
          f"{R.get('paired_whisper', 'the last layer (through CTranslate2), the chain default then; the EmoDB rows read layer 3, the default since')}.",
          "", f"Seeds {R.get('seeds')}; machine: {R['machine']}; {R['when']}."]
    path.write_text('\n'.join(L) + '\n')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', default='42,1,2'); ap.add_argument('--only', default='paired,emodb,text')
    ap.add_argument('--text-features', default='minilm+lexical,minilm', help=f"the text part's sentence embeddings, comma-separated, one row each: {', '.join(TEXT_FEATURES)}")
    ap.add_argument('--work', default='/tmp/cmer_bench')
    ap.add_argument('--results', default=str(HERE/'results'/'probes.json')); ap.add_argument('--md', default=str(HERE/'probes.md'))
    a = ap.parse_args(argv)
    from cmer.core import atomic_json
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    path = Path(a.results)
    only = a.only.split(',')
    tf = a.text_features.split(',')
    if set(tf) - set(TEXT_FEATURES): raise SystemExit(f"--text-features: expected some of {list(TEXT_FEATURES)}")
    if set(only) - {'paired', 'emodb', 'text'}: raise SystemExit(f"--only: expected some of paired, emodb, text, not {a.only!r}")
    def keep(r, part): return not (('PAIRED' in r['data'] and part == 'paired') or ('EmoDB' in r['data'] and part == 'emodb')
                                   or ('IEMOCAP' in r['data'] and part == 'text' and r['features'] in [TEXT_FEATURES[f] for f in tf]))
    for part in only:
        rows, fused, meta = (paired_part([int(s) for s in a.seeds.split(',')], work) if part == 'paired' else
                             (emodb_part(work), [], {}) if part == 'emodb' else ([r for f in tf for r in text_part(work, f)], [], {}))
        R = json.loads(path.read_text()) if path.exists() else dict(rows=[], fused=[])    # read now: another part may have run meanwhile
        R['rows'] = [r for r in R['rows'] if keep(r, part)] + rows; R['fused'] = [r for r in R['fused'] if keep(r, part)] + fused
        R.update(meta, machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}", when=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
        atomic_json(path, R); write_md(R, Path(a.md))
    print(Path(a.md).read_text())


if __name__ == '__main__':
    main()
