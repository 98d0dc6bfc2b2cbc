"""`cmer predict` with the shipped default model on PAIRED dialog videos of speakers it never saw (issue 18 item 4).

Data: PAIRED (real signals paired by label; the modalities are independent given the label; not a real multimodal
recording): `cmer demo-corpus DIR --speech emodb` (seed 42, the default). Its session 5 holds EmoDB speakers 15 and 16,
whom the default model's audio branch never trained on, IEMOCAP session 5's sentences (held out from the text branch),
and FER2013 validation faces (the face CNN trained on FER2013's train split). The default model's fusion was fitted on
sessions 1-4 only. Each of session 5's dialog videos goes through `cmer predict FILE --json`: segmentation of the
speech, Whisper's transcript, the speaking face, the featurizers the model's checkpoints record. Each segment gets the
label of the utterance it overlaps most (from the corpus' EmoEvaluation times; a segment overlapping no utterance is
left out and counted). UA over segments: fused, and each branch alone (segments where it predicted).

    python benchmarks/predict_paired.py [--model FOLDER] [--work /tmp/cmer_bench] [--sessions 5] [--record]

Writes benchmarks/results/predict_paired.json ({"segments", "ua", "ua_audio", "ua_video", "ua_text", ...}).
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
DATA_LABEL = 'PAIRED (real signals paired by label; independent given the label; not a real multimodal recording)'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', help='a default-model folder (default: the shipped one)')
    ap.add_argument('--work', default='/tmp/cmer_bench'); ap.add_argument('--sessions', default='5'); ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--results', default=str(HERE/'results'/'predict_paired.json'))
    ap.add_argument('--record', action='store_true', help="add the figures to the evaluated default model's default_model.json and card")
    a = ap.parse_args(argv)
    from cmer.core import atomic_json
    from cmer.corpus import read_corpus, apply_label_map
    from cmer.metrics import emotion_metrics
    cmer = str(Path(sys.executable).parent/'cmer')
    corpus = Path(a.work)/f'paired{a.seed}'
    if not (corpus/'demo_corpus.json').exists():
        subprocess.run([cmer, 'demo-corpus', str(corpus), '--speech', 'emodb', '--seed', str(a.seed)], check=True)
    marker = json.loads((corpus/'demo_corpus.json').read_text())
    table = apply_label_map(read_corpus(corpus)[0], '4class')[0]
    sessions = [int(s) for s in a.sessions.split(',')]
    classes = None; rows = []; t0 = time.perf_counter(); n_out = 0
    for video in sorted({v for v, s in zip(table.video, table.session) if int(s) in sessions}):
        out = Path(a.work)/'predict_paired'/Path(video).stem
        cmd = [cmer, 'predict', video, '--out', str(out), '--json', '--no-progress'] + (['--model', a.model] if a.model else [])
        doc = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        classes = doc['classes']
        utts = table[table.video == video]
        for s in doc['segments']:
            ov = np.minimum(utts.end.to_numpy(float), s['end']) - np.maximum(utts.start.to_numpy(float), s['start'])
            if (ov <= 0).all(): n_out += 1; continue
            u = utts.iloc[int(ov.argmax())]
            rows.append(dict(file=Path(video).name, start=s['start'], end=s['end'], utt_id=u.utt_id, label=u.label,
                             **{src: (max(p, key=p.get) if p else None) for src, p in s['probabilities'].items()}))
        print(f"{Path(video).name}: {len(doc['segments'])} segments", flush=True)
    y = np.array([r['label'] for r in rows])
    def ua(src):
        ok = np.array([r[src] is not None for r in rows])
        return (emotion_metrics(y[ok], np.array([r[src] for r in rows])[ok])['ua'] if ok.any() else None), int(ok.sum())
    res = dict(data=DATA_LABEL, model=a.model or 'the shipped default model', sessions=sessions, seed=a.seed, segments=len(rows),
               segments_outside_utterances=n_out, utterances=int(table.session.astype(int).isin(sessions).sum()),
               utterances_reached=len({r['utt_id'] for r in rows}), seconds=round(time.perf_counter() - t0, 1))
    for src in ('fused', 'audio', 'video', 'text'):
        v, n = ua(src); res['ua' if src == 'fused' else f'ua_{src}'] = v; res[f'n_{src}'] = n
    res['per_segment'] = rows
    atomic_json(Path(a.results), res)
    if a.record:
        from cmer.default_model import record_predict_check, default_model_dir
        record_predict_check(a.model or default_model_dir(), res)
    print(json.dumps({k: v for k, v in res.items() if k != 'per_segment'}, indent=1))


if __name__ == '__main__':
    main()
