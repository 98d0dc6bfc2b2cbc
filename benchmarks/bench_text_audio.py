#!/usr/bin/env python
"""Throughput of the text and audio steps (text_aug, audio_aug, mfcc, text_embed) next to the raw library call.

    python benchmarks/bench_text_audio.py [--n 500] [--raw-asr-n 100] [--work /tmp/cmer-bench] [--mpnet] [--probe] [--parts ...]

- text: the first N real transcripts of iemocap.csv (the data folder, $CMER_DATA) as a flat CSV corpus;
- audio: a SYNTHETIC demo corpus of N utterances (espeak-ng speech of real transcripts; built once, cached in --work);
- each step runs on that corpus from scratch (force=True, translation cache off); the raw call is the library
  doing the same work without cmer (apertium subprocess per hop, SentenceTransformer.encode,
  faster-whisper transcribe per utterance, espeak-ng -w per utterance, librosa.feature.mfcc);
- the faster-whisper baseline runs on the first --raw-asr-n utterances only (it is slow) and reports a rate;
- the feature-store load time is measured on an IEMOCAP-sized MFCC set (5,531 utterances, 4.5 s mean);
- --parts selects what runs (mfcc alone reuses the augmented audio of an earlier run in --work);
- --probe adds a leave-one-session-out linear probe (4 classes) of MiniLM and mpnet embeddings of all 5,531
  real transcripts.
Prints one table; numbers measured on demo-corpus audio are labelled SYNTHETIC.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd


def timed(fn, *a, **kw):
    t0 = time.perf_counter(); r = fn(*a, **kw); return r, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=500)
    ap.add_argument('--raw-asr-n', type=int, default=100)
    ap.add_argument('--work', default=os.path.join(tempfile.gettempdir(), 'cmer-bench'))
    ap.add_argument('--mpnet', action='store_true', help='also time text_embed with mpnet')
    ap.add_argument('--probe', action='store_true', help='linear probe of MiniLM vs mpnet on all real transcripts')
    ap.add_argument('--parts', default='text,audio_aug,mfcc,store',
                    help='comma-separated: text, audio_aug, mfcc (reuses the audio_aug outputs in --work), store')
    a = ap.parse_args()
    from cmer.core import get_config
    from cmer.corpus import read_flat_csv
    cfg = get_config()
    csv = cfg.data_dir/'iemocap.csv' if cfg.data_dir else None
    if not csv or not csv.exists(): sys.exit("needs the real data folder with iemocap.csv (set CMER_DATA)")
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    rows = []
    def row(step, unit, n, step_s, raw_what, raw_n, raw_s, note=''):
        rows.append(dict(step=step, unit=unit, items=n, step_rate=n / step_s, raw=raw_what, raw_items=raw_n,
                         raw_rate=raw_n / raw_s if raw_s else float('nan'), note=note))
        print(f"  {step}: {n / step_s:.1f} {unit}/s" + (f" (raw {raw_what}: {raw_n / raw_s:.1f})" if raw_s else ''), flush=True)

    parts = set(a.parts.split(','))
    real, _ = read_flat_csv(csv)
    sub = pd.read_csv(csv, dtype=str, keep_default_na=False).drop(columns=['Unnamed: 0'], errors='ignore').head(a.n)
    flat = work/f'iemocap_{a.n}.csv'; sub.to_csv(flat, index=False)
    tout = work/'text_out'
    if 'text' in parts: text_part(a, flat, tout, row)
    if a.probe: probe(real)
    if parts & {'audio_aug', 'mfcc'}: audio_part(a, work, parts, row, rows)
    if 'store' in parts: store_part(work)
    df = pd.DataFrame(rows)
    if len(df):
        df['speed-up'] = df.step_rate / df.raw_rate
        pd.set_option('display.width', 250); pd.set_option('display.max_colwidth', 90)
        print('\n' + df.round(2).to_string(index=False))


def text_part(a, flat, tout, row):
    from cmer.corpus import corpus_step, load_utterances
    from cmer.text_aug import text_aug_step, ApertiumTranslator, parse_chain
    from cmer.text_embed import text_embed_step, load_encoder, embed
    corpus_step(flat, tout)
    texts = load_utterances(tout).transcript.tolist()
    print(f"text: {len(texts)} real IEMOCAP transcripts", flush=True)
    m, s = timed(text_aug_step, flat, tout, cache=False, force=True)
    raw_s = 0.0
    cur = [' '.join(t.split()) for t in texts]
    for src, tgt in parse_chain('en>ca>es>en'):
        tr = ApertiumTranslator(src, tgt)
        t0 = time.perf_counter()
        r = subprocess.run(['apertium', '-u', '-f', 'txt', tr.mode], input='\n'.join(cur) + '\n', capture_output=True, text=True)
        raw_s += time.perf_counter() - t0
        cur = r.stdout.split('\n')[:len(cur)]
    row('text_aug (apertium en>ca>es>en)', 'sentences', len(texts), s, 'apertium subprocess x3 hops', len(texts), raw_s,
        f"{m['report']['n_changed']} of {m['report']['n_translated']} changed, chrF vs source {m['report']['chrf_corpus']}"
        + (f"; original MarianMT: {m['report']['original']['n_changed']} changed, chrF {m['report']['original']['chrf_corpus']}" if 'original' in m['report'] else ''))
    aug = pd.read_csv(tout/'text_aug'/'augmented.csv', keep_default_na=False).transcript_aug.tolist()
    for model in ['minilm'] + (['mpnet'] if a.mpnet else []):
        m, s = timed(text_embed_step, flat, tout, model=model, force=True)
        enc = load_encoder(model)
        embed(enc, texts[:8])
        _, raw_s = timed(enc.encode, texts + aug, batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        row(f'text_embed ({model}, transcripts + back-translations)', 'sentences', len(texts) + len(aug), s,
            'SentenceTransformer.encode', len(texts) + len(aug), raw_s, f"{m['report']['dim']}-d")


def probe(real):
    from sklearn.linear_model import LogisticRegression
    from cmer.corpus import apply_label_map
    from cmer.text_embed import load_encoder, embed
    lab, _ = apply_label_map(real, '4class')
    for model in ('minilm', 'mpnet'):
        enc = load_encoder(model)
        X, secs = timed(embed, enc, lab.transcript.tolist())
        acc = []
        for sess in range(1, 6):
            tr = (lab.session != sess).values
            clf = LogisticRegression(max_iter=2000).fit(X[tr], lab.label_id[tr])
            acc.append(float((clf.predict(X[~tr]) == lab.label_id[~tr]).mean()))
        print(f"probe {model}: {X.shape[1]}-d, {len(lab) / secs:.1f} sentences/s, leave-one-session-out accuracy "
              f"{np.mean(acc):.3f} ({' '.join(f'{x:.3f}' for x in acc)}) on {len(lab)} real transcripts", flush=True)


def audio_part(a, work, parts, row, rows):
    from cmer.core import get_config
    from cmer.corpus import corpus_step, load_utterances
    from cmer.demo import demo_corpus
    from cmer.audio_aug import audio_aug_step, make_asr, make_tts
    from cmer.media import read_audio, SR
    from cmer.mfcc import mfcc_step, mfcc, mfcc_settings
    import librosa
    import cmer.demo as demo
    # workaround: cmer.demo.synthesize passes the text as a bare argument, so espeak-ng takes a transcript that
    # starts with '-' ('--you know, ...', three of the 500) for an option and writes no wav; a leading space avoids it
    _synth = demo.synthesize
    demo.synthesize = lambda text, *args, **kw: _synth(' ' + text if text.startswith('-') else text, *args, **kw)
    per = -(-a.n // 5)
    t0 = time.perf_counter()
    corpus = demo_corpus(work/f'demo_{a.n}', sessions=5, per_session=per, fps=5, n_jobs=1)   # in-process, so the workaround applies
    print(f"audio: SYNTHETIC demo corpus of {5 * per} utterances ready [{time.perf_counter() - t0:.0f} s]", flush=True)
    aout = work/'audio_out'
    corpus_step(corpus, aout)
    utts = load_utterances(aout)
    ys = [read_audio(w)[0] for w in utts.wav]
    audio_s = sum(len(y) for y in ys) / SR
    if 'audio_aug' not in parts:       # mfcc only: reuse the augmented audio already in --work
        mfcc_part(aout, corpus, ys, audio_s, row); return
    m, s = timed(audio_aug_step, corpus, aout, force=True)
    rep = m['report']
    asr = make_asr('faster-whisper')
    k = min(a.raw_asr_n, len(ys))
    hyps, raw_s = timed(lambda: [asr.transcribe(y) for y in ys[:k]])
    raw_audio = sum(len(y) for y in ys[:k]) / SR
    rows.append(dict(step='audio_aug ASR stage (faster-whisper, packed)', unit='audio s', items=len(ys),
                     step_rate=rep['audio_seconds'] / rep['seconds']['asr'], raw='WhisperModel.transcribe per utterance',
                     raw_items=k, raw_rate=raw_audio / raw_s, note=f"SYNTHETIC; ASR WER {100 * rep['asr_wer']:.1f} % (packed) "))
    from cmer.audio_aug import wer
    rows[-1]['note'] += f"vs {100 * wer(utts.transcript[:k].tolist(), hyps):.1f} % (per utterance, first {k})"
    print(f"  ASR: packed {rows[-1]['step_rate']:.2f} audio s/s, per utterance {rows[-1]['raw_rate']:.2f}", flush=True)
    tts = make_tts()                    # the step's default synthesiser (the espeak-ng program)
    aug_t = pd.read_csv(aout/'audio_aug'/'audio_aug.csv', keep_default_na=False)
    _, raw_s = timed(lambda: [tts.speak(t, 'en+f3') for t in aug_t.text_aug])
    row('audio_aug TTS stage (espeak-ng)', 'utterances', len(aug_t), rep['seconds']['tts'],
        'espeak-ng -w per utterance', len(aug_t), raw_s, 'SYNTHETIC')
    row('audio_aug (whole step)', 'utterances', rep['n_augmented'], s, '-', 0, 0,
        f"SYNTHETIC; {rep['audio_seconds']:.0f} s of audio; {rep['n_failed']} failed")
    if 'mfcc' in parts: mfcc_part(aout, corpus, ys, audio_s, row)


def mfcc_part(aout, corpus, ys, audio_s, row):
    import librosa
    from cmer.core import get_config
    from cmer.media import read_audio, SR
    from cmer.mfcc import mfcc_step, mfcc_settings
    aug_t = pd.read_csv(aout/'audio_aug'/'audio_aug.csv', keep_default_na=False)
    m, s = timed(mfcc_step, corpus, aout, force=True)
    st = mfcc_settings()
    aug_ys = [read_audio(w)[0] for w in aug_t.wav_aug]
    all_s = audio_s + sum(len(y) for y in aug_ys) / SR
    _, raw_s = timed(lambda: [librosa.feature.mfcc(y=y, center=True, **st) for y in ys + aug_ys])
    row('mfcc (original + augmented, read + MFCC + save)', 'audio s', all_s, s, 'librosa.feature.mfcc (audio in memory)', all_s, raw_s,
        f"SYNTHETIC; n_jobs={get_config().n_jobs}")


def store_part(work):
    "Load time of an IEMOCAP-sized MFCC set (5,531 utterances, gamma-distributed lengths, mean 4.5 s)."
    from cmer.core import make_features, save_features, load_features
    rng = np.random.default_rng(0)
    lens = np.clip(rng.gamma(2.0, 225, 5531).astype(int), 50, 3500)
    feats = make_features([f'u{i}' for i in range(5531)], [rng.standard_normal((n, 20), dtype=np.float32) for n in lens])
    p = save_features(work/'mfcc_iemocap_size.npz', feats)
    times = [timed(load_features, p)[1] for _ in range(3)]
    print(f"feature store: {len(lens)} utterances, {lens.sum():,} frames x 20 ({p.stat().st_size / 2**20:.0f} MB) "
          f"load in {min(times):.3f} s (best of 3)")


if __name__ == '__main__':
    main()
