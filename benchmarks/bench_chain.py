#!/usr/bin/env python
"""Throughput of the whole chain (`cmer run`) on a SYNTHETIC demo corpus, per step, with 1 and 2 local workers.

    python benchmarks/bench_chain.py [--n 1000] [--workers 1 2] [--out /tmp/cmer-bench-chain] [--steps ...]
                                     [--reuse-corpus] [--parts chain,asr,embed,noop] [--json PATH]

- corpus: `cmer.demo.demo_corpus` with 5 sessions of n/5 utterances (espeak-ng speech of real IEMOCAP transcripts,
  rendered faces; SYNTHETIC), built once in --out (kept with --reuse-corpus);
- chain: `cmer run` into a fresh output root per worker count w, with CMER_JOBS=w (the per-item maps of the steps)
  and frames' n_jobs=w; text_aug's translation cache off (audio_aug's translations use the user's cache);
  per step: the chain's wall seconds (kernel start, the chapter's checks, the work), the step's own seconds (its
  manifest) and the rest (kernel + checks); the stage seconds the steps report (ASR, translation, TTS ...);
- extrapolation to IEMOCAP: a step's own seconds scale with the utterances (audio steps: with the audio seconds,
  IEMOCAP's 12 h over 10,039 utterances = 4.3 s each), the rest is a fixed cost per step;
- asr: faster-whisper on the corpus' first --asr-n utterances as the audio_aug step runs it (packed 28 s windows,
  int8) and the alternatives (one utterance per call; faster-whisper's BatchedInferencePipeline), audio-s/s and WER;
- embed: sentences/s of the text_embed step (its manifest) next to the bare `SentenceTransformer.encode` on the same
  sentences in this process;
- noop: `cmer run` of a step that is up to date (skipped by the chain), and of the audio/video steps on a corpus
  without audio or video (the flat iemocap.csv format: nothing to do), with and without the chapter's checks;
  the floor: a papermill kernel that runs one cell, and `import cmer.<step>`.
Every number is measured on the SYNTHETIC demo corpus unless it says otherwise; the machine's load is recorded.
"""
import argparse, json, math, os, platform, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np, pandas as pd

IEMOCAP = {'IEMOCAP 4-class (5,531 utt.)': 5531, 'IEMOCAP full release (10,039 utt., 12 h)': 10039}
IEMOCAP_SECONDS_PER_UTT = 12 * 3600 / 10039      # 12 h of speech over the release's 10,039 utterances
AUDIO_STEPS = ('audio_aug', 'mfcc')               # their work scales with the seconds of audio
TARGETS = dict(chain_s_per_utt=0.3, asr_audio_s_per_s=10.0, embed_ratio=0.8, noop_s=3.0)
LABEL = 'SYNTHETIC'
CMER = str(Path(sys.executable).parent/'cmer')


class LoadSampler:
    "The 1-minute load average sampled every `every` seconds while a block runs."
    def __init__(self, every:float=5.0): self.every, self.samples, self._stop = every, [], threading.Event()
    def _loop(self):
        while not self._stop.wait(self.every): self.samples.append(os.getloadavg()[0])
    def __enter__(self):
        self.start = os.getloadavg(); self._t = threading.Thread(target=self._loop, daemon=True); self._t.start(); return self
    def __exit__(self, *a):
        self._stop.set(); self._t.join(); self.end = os.getloadavg()
    def summary(self) -> dict:
        s = self.samples or [self.start[0]]
        return dict(start=[round(x, 2) for x in self.start], end=[round(x, 2) for x in self.end],
                    mean_1min=round(float(np.mean(s)), 2), max_1min=round(float(np.max(s)), 2))


def say(*a): print(f'[{LABEL}]', *a, flush=True)


def cmer_run(corpus, out, *args, env=None, log=None, timeout=None) -> tuple[float, str]:
    "Wall seconds of `cmer run --corpus corpus --out out args...` and its output; raises on failure."
    t0 = time.perf_counter()
    r = subprocess.run([CMER, 'run', '--corpus', str(corpus), '--out', str(out), *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=timeout)
    secs = time.perf_counter() - t0
    if log: Path(log).write_text(r.stdout + r.stderr)
    if r.returncode: raise RuntimeError(f"cmer run {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return secs, r.stdout


def chain_has_checks() -> bool:
    "Whether this cmer's `cmer run` knows `--checks` (run the chapters' checks once per code version, always, or never)."
    r = subprocess.run([CMER, 'run', '--help'], capture_output=True, text=True)
    return '--checks' in r.stdout


# ----------------------------------------------------------------------------------------------------------- corpus
def build_corpus(a, work:Path) -> tuple[Path, dict]:
    from cmer.demo import demo_corpus
    per = math.ceil(a.n / a.sessions)
    dest = work/f'corpus_{a.sessions}x{per}'
    if dest.exists() and not a.reuse_corpus: shutil.rmtree(dest)
    t0 = time.perf_counter()
    demo_corpus(dest, sessions=a.sessions, per_session=per, seed=0, fps=a.fps, n_jobs=max(a.workers))
    secs = time.perf_counter() - t0
    info = json.loads((dest/'demo_corpus.json').read_text())
    n = info['n_utterances']
    audio_s = sum(u['end'] - u['start'] for u in info['utterances'])
    say(f"demo corpus {dest}: {n} utterances, {audio_s / 60:.1f} min of speech ({audio_s / n:.2f} s per utterance), "
        f"{'built' if secs > 5 else 'reused'} in {secs:.0f} s")
    return dest, dict(path=str(dest), n_utterances=n, audio_seconds=round(audio_s, 1), build_seconds=round(secs, 1),
                      sessions=a.sessions, per_session=per, fps=a.fps, data_label=info.get('data_label'))


# ------------------------------------------------------------------------------------------------------------ chain
def stage_seconds(out:Path, step:str) -> dict:
    "The stage seconds and rates a step's manifest reports (for the bounding stage)."
    from cmer.core import load_manifest
    m = load_manifest(out, step) or {}
    r = m.get('report') or {}
    d = {}
    if step == 'audio_aug' and 'seconds' in r:
        d = {f'audio_aug.{k}': v for k, v in r['seconds'].items()}
        d['audio_aug.recognise_wall'] = r.get('recognise_wall_seconds')
        d['audio_seconds'] = r.get('audio_seconds'); d['asr_wer'] = r.get('asr_wer')
        if r.get('audio_seconds') and r['seconds'].get('asr'): d['asr_audio_s_per_s'] = round(r['audio_seconds'] / r['seconds']['asr'], 2)
        if r.get('audio_seconds') and r.get('recognise_wall_seconds'):
            d['asr_audio_s_per_wall_s'] = round(r['audio_seconds'] / r['recognise_wall_seconds'], 2)
        d['audio_aug.translations_cached'] = [h.get('cached') for h in r.get('hops', [])]
    elif step == 'text_aug':
        d = {'text_aug.translate': r.get('seconds'), 'text_aug.sentences_per_second': r.get('sentences_per_second'),
             'text_aug.translations_cached': [h.get('cached') for h in r.get('hops', [])]}
    elif step == 'text_embed':
        for k in ('text', 'text_aug'):
            if isinstance(r.get(k), dict): d[f'text_embed.{k}_sentences_per_second'] = r[k].get('sentences_per_second')
    for k, v in r.items():                           # any other timing a step reports
        if k.endswith('seconds') and isinstance(v, (int, float)) and not isinstance(v, bool): d.setdefault(f'{step}.{k}', v)
    return d


def run_chain_once(a, corpus:Path, work:Path, w:int, n:int, audio_s:float, checks:str|None) -> dict:
    from cmer.core import load_manifest
    out = work/f'out_w{w}'
    if out.exists(): shutil.rmtree(out)
    env = dict(CMER_JOBS=str(w))
    args = ['-p', 'text_aug:cache=false', '-p', f'frames:n_jobs={w}']
    if a.steps: args = ['--steps', *a.steps, *args]
    if checks: args += ['--checks', checks]
    say(f"chain with {w} worker(s) on {n} utterances -> {out}" + (f" (checks: {checks})" if checks else ''))
    with LoadSampler() as load:
        wall, stdout = cmer_run(corpus, out, *args, env=env, log=work/f'chain_w{w}.log')
    chain = json.loads((out/'chain.json').read_text())
    steps = []
    for s in chain['steps']:
        m = load_manifest(out, s['step']) or {}
        own = float(m.get('seconds') or 0.0)
        steps.append(dict(step=s['step'], number=s['number'], status=s['status'], chain_seconds=s['seconds'], step_seconds=round(own, 2),
                          rest_seconds=round(s['seconds'] - own, 2), s_per_utt=round(s['seconds'] / n, 4),
                          checks=s.get('checks'), stages=stage_seconds(out, s['step'])))
    total = sum(s['chain_seconds'] for s in steps)
    say(f"  {w} worker(s): whole chain {total:.0f} s = {total / n:.3f} s per utterance (cmer run wall {wall:.0f} s); load {load.summary()}")
    return dict(workers=w, out=str(out), wall_seconds=round(wall, 1), chain_seconds=round(total, 1), s_per_utt=round(total / n, 4),
                load=load.summary(), steps=steps)


def extrapolate(res:dict, n:int, audio_s:float) -> dict:
    "Seconds of each step and of the chain at IEMOCAP's sizes: own seconds scale with utterances (audio steps: audio seconds), the rest is fixed."
    table = {}
    for name, N in IEMOCAP.items():
        A = N * IEMOCAP_SECONDS_PER_UTT
        per = {}
        for s in res['steps']:
            scale = A / audio_s if s['step'] in AUDIO_STEPS else N / n
            per[s['step']] = round(s['rest_seconds'] + s['step_seconds'] * scale, 1)
        tot = sum(per.values())
        table[name] = dict(utterances=N, audio_hours=round(A / 3600, 2), seconds=per, total_seconds=round(tot, 1),
                           total_minutes=round(tot / 60, 1), s_per_utt=round(tot / N, 4))
    return table


def print_chain_table(runs:list[dict], n:int):
    steps = [s['step'] for s in runs[0]['steps']]
    head = f"{'step':<12}" + ''.join(f" | {w['workers']} worker(s): s/utt (chain s = own + kernel/checks)" for w in runs)
    say(f"seconds per utterance per step, {n} utterances")
    print(head)
    for st in steps:
        line = f"{st:<12}"
        for w in runs:
            s = next(x for x in w['steps'] if x['step'] == st)
            line += f" | {s['s_per_utt']:.4f} ({s['chain_seconds']:.1f} = {s['step_seconds']:.1f} + {s['rest_seconds']:.1f})".ljust(55)
        print(line)
    print(f"{'whole chain':<12}" + ''.join(f" | {w['s_per_utt']:.4f} ({w['chain_seconds']:.0f} s)".ljust(55) for w in runs))


# -------------------------------------------------------------------------------------------------------------- asr
def asr_bench(a, corpus:Path, work:Path) -> dict:
    "audio-s/s and WER of faster-whisper as the audio_aug step runs it (1 and 2 workers), and of alternatives, on the same utterances."
    from joblib import Parallel, delayed
    from cmer.corpus import corpus_step, load_utterances
    from cmer.media import read_audio, SR
    import cmer.audio_aug as aa
    out = work/'asr_out'
    corpus_step(corpus, out)
    df = load_utterances(out).head(a.asr_n)
    items = list(zip(df.utt_id, df.wav))
    ys = [read_audio(w)[0] for w in df.wav]
    audio_s = sum(len(y) for y in ys) / SR
    res = {}
    def rec(name, fn, **info):
        t0 = time.perf_counter(); hyps = fn(); secs = time.perf_counter() - t0
        res[name] = dict(seconds=round(secs, 2), audio_seconds=round(audio_s, 1), audio_s_per_s=round(audio_s / secs, 2),
                         wer=round(aa.wer(df.transcript.tolist(), hyps), 4), load_1min=round(os.getloadavg()[0], 2), **info)
        say(f"  ASR {name}: {audio_s / secs:.2f} audio-s/s, WER {res[name]['wer']:.4f} ({len(ys)} utterances, {audio_s:.0f} s of audio, "
            f"load {res[name]['load_1min']})")
        return hyps
    say(f"ASR on the first {len(ys)} utterances ({audio_s:.0f} s of audio), faster-whisper whisper-base int8 greedy, CPU, packed 28 s windows")
    asr = aa.make_asr('faster-whisper', device='cpu')               # as the step builds it with one worker (CTranslate2's default threads)
    asr.transcribe(ys[0])                                            # warm-up (first call allocates)
    # the step cuts its utterances into blocks (BLOCK = 256) and packs each block's utterances into 28 s windows; here two
    # blocks of half the utterances each, recognised one after the other (1 worker) or by two processes (CMER_JOBS=2):
    # the same windows, so the same texts
    half = (len(items) + 1) // 2
    blocks = [items[:half], items[half:]]
    threads = max(1, aa._cores() // 2)
    def one_worker():
        return [h for b in blocks for h in aa._recognise_block(b, ('faster-whisper', None, 'cpu', 0))['hyps']]
    def two_workers():
        got = Parallel(n_jobs=2)(delayed(aa._recognise_block)(b, ('faster-whisper', None, 'cpu', threads)) for b in blocks)
        return [h for g in got for h in g['hyps']]
    one_worker()                                                     # warm-up: the model cached in this process
    h1 = rec(f'step, 1 worker (1 process, CTranslate2 default threads; 2 blocks of {half})', one_worker, settings=dict(workers=1, cpu_threads=0))
    h2 = rec(f'step, 2 workers (2 processes x {threads} thread(s), model loads included; 2 blocks of {half})', two_workers,
             settings=dict(workers=2, cpu_threads=threads))
    res['same_texts_1_and_2_workers'] = h1 == h2
    rec('1 process, one block (all utterances packed together)', lambda: asr.transcribe_many(ys), settings=dict(cpu_threads=0))
    if 'alternatives' in a.asr_parts:
        a2 = aa.FasterWhisperASR(device='cpu', cpu_threads=aa._cores()); a2.transcribe(ys[0])
        rec(f'1 process, cpu_threads={aa._cores()}', lambda: a2.transcribe_many(ys), settings=dict(cpu_threads=aa._cores()))
        try:
            from faster_whisper import BatchedInferencePipeline
            bp = BatchedInferencePipeline(model=asr.whisper)
            def batched(bs=8, gap=1.0):
                "The step's packed windows decoded together by BatchedInferencePipeline (clip_timestamps = the windows)."
                parts, clips, spans, t = [], [], [], 0.0
                g = np.zeros(int(gap * SR), np.float32)
                i = 0
                while i < len(ys):
                    start, w = t, 0.0
                    while i < len(ys) and (w == 0.0 or w + len(ys[i]) / SR <= asr.pack_seconds):
                        spans.append((i, start + w, start + w + len(ys[i]) / SR)); parts += [ys[i], g]; w += len(ys[i]) / SR + gap; i += 1
                    t = start + w; clips.append(dict(start=start, end=t))
                segs, _ = bp.transcribe(np.concatenate(parts), language='en', beam_size=1, batch_size=bs, clip_timestamps=clips,
                                        word_timestamps=True, vad_filter=False)
                words = {k: [] for k, _, _ in spans}
                for s in segs:
                    for wd in s.words or []:
                        mid = (wd.start + wd.end) / 2
                        k = min(spans, key=lambda sp: 0 if sp[1] <= mid <= sp[2] else min(abs(mid - sp[1]), abs(mid - sp[2])))[0]
                        words[k].append(wd.word)
                return [' '.join(''.join(words[k]).split()) for k in range(len(ys))]
            rec('BatchedInferencePipeline over the packed windows, batch 8', batched, settings=dict(batch_size=8))
        except Exception as e: res['BatchedInferencePipeline'] = dict(error=f'{type(e).__name__}: {e}')
    return res


# ------------------------------------------------------------------------------------------------------------ embed
def embed_bench(a, runs:list[dict], corpus:Path, work:Path) -> dict:
    "The text_embed step's sentences/s (its manifest) next to the bare SentenceTransformer.encode on the same sentences."
    from cmer.corpus import corpus_step, load_utterances
    from cmer.core import load_manifest
    from cmer.models import model_dir
    import torch
    from sentence_transformers import SentenceTransformer
    out = Path(runs[0]['out']) if runs else work/'asr_out'
    if not (out/'corpus'/'utterances.csv').exists(): corpus_step(corpus, out)
    texts = [' '.join(t.split()) for t in load_utterances(out).transcript if t.strip()]
    m = SentenceTransformer(str(model_dir('minilm')), device='cpu', local_files_only=True)
    m.encode(texts[:64], batch_size=64, show_progress_bar=False)      # warm-up
    rates = []
    for _ in range(3):
        t0 = time.perf_counter(); m.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        rates.append(len(texts) / (time.perf_counter() - t0))
    bare = float(np.median(rates))
    res = dict(sentences=len(texts), bare_sentences_per_second=round(bare, 1), bare_runs=[round(r, 1) for r in rates],
               torch_threads=torch.get_num_threads())
    say(f"sentence embeddings, bare SentenceTransformer.encode (minilm, batch 64, {torch.get_num_threads()} torch threads): "
        f"{bare:.1f} sentences/s (median of {[round(r, 1) for r in rates]}), {len(texts)} sentences")
    for run in runs:
        r = (load_manifest(run['out'], 'text_embed') or {}).get('report') or {}
        if isinstance(r.get('text'), dict):
            step = r['text']['sentences_per_second']
            res[f"step_w{run['workers']}"] = dict(sentences_per_second=step, ratio=round(step / bare, 3),
                                                  text_aug_sentences_per_second=(r.get('text_aug') or {}).get('sentences_per_second'))
            say(f"  text_embed step ({run['workers']} worker(s)): {step} sentences/s = {step / bare:.0%} of the bare call")
    # and embed() as the step calls it, in this process (without kernel or other steps around it)
    from cmer.text_embed import load_encoder, embed
    enc = load_encoder('minilm', 'cpu'); embed(enc, texts[:64])
    t0 = time.perf_counter(); embed(enc, texts); r = len(texts) / (time.perf_counter() - t0)
    res['cmer_embed_in_process'] = dict(sentences_per_second=round(r, 1), ratio=round(r / bare, 3))
    say(f"  cmer.text_embed.embed in this process: {r:.1f} sentences/s = {r / bare:.0%} of the bare call")
    return res


# ------------------------------------------------------------------------------------------------------------- noop
NOOP_STEPS = ('audio_aug', 'mfcc', 'frames', 'frame_embed', 'image_aug')

def noop_bench(a, runs:list[dict], corpus:Path, work:Path, checks_flag:bool) -> dict:
    from cmer.core import get_config
    res = {}
    if runs:                                         # an up-to-date step: the chain checks the manifest and starts no kernel
        out = runs[-1]['out']
        for st in ('audio_aug', 'text_embed'):
            secs, _ = cmer_run(corpus, out, '--steps', st)
            res[f'up to date: {st}'] = round(secs, 2)
            say(f"no-op: cmer run --steps {st} on an up-to-date output root: {secs:.2f} s (the whole command)")
    csv = get_config().data_dir/'iemocap.csv' if get_config().data_dir else None
    flat = work/'text_only.csv'
    if csv and csv.exists():
        pd.read_csv(csv, dtype=str, keep_default_na=False).head(a.n).to_csv(flat, index=False)   # the flat iemocap.csv format
        what = f'the first {a.n} rows of iemocap.csv (real transcripts, no audio or video)'
    else:
        from cmer.corpus import load_utterances
        load_utterances(runs[0]['out'])[['utt_id', 'transcript', 'label_raw']].rename(
            columns={'utt_id': 'FileName', 'transcript': 'Sentences', 'label_raw': 'Label'}).to_csv(flat, index=False)
        what = 'the demo corpus transcripts as a flat CSV (SYNTHETIC, no audio or video)'
    def nothing_to_do(mode, tag):
        out = work/f'text_only_out_{tag}'
        if out.exists(): shutil.rmtree(out)
        cmer_run(flat, out, '--steps', 'corpus', *(['--checks', mode] if mode else []))
        got = {}
        for st in NOOP_STEPS:
            secs, _ = cmer_run(flat, out, '--steps', st, *(['--checks', mode] if mode else []))
            chain = json.loads((Path(out)/'chain.json').read_text())['steps'][-1]
            got[st] = dict(command_seconds=round(secs, 2), step_seconds=chain['seconds'], checks=chain.get('checks'))
        return got
    for mode in (['always', 'once'] if checks_flag else [None]):
        got = nothing_to_do(mode, mode or 'default')
        if mode == 'once' and any(g['checks'] == 'ran' for g in got.values()):
            got = nothing_to_do(mode, 'once_again')   # the first run of this code version ran (and recorded) the checks
        for st, g in got.items():
            res[f"nothing to do ({'checks ' + mode if mode else 'default'}): {st}"] = g
            say(f"no-op: {st} on a text-only corpus, checks {mode or 'default'}: {g['step_seconds']:.2f} s in the chain "
                f"({g['command_seconds']:.2f} s the whole cmer run command; checks: {g['checks']})")
    res['text_only_corpus'] = what
    # the floor: a kernel that runs one cell, and the import of a step module
    import nbformat, papermill as pm
    nb = nbformat.v4.new_notebook(); nb.cells = [nbformat.v4.new_code_cell('x = 1')]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    p = work/'one_cell.ipynb'; nbformat.write(nb, str(p))
    t0 = time.perf_counter()
    pm.execute_notebook(str(p), str(work/'one_cell.out.ipynb'), kernel_name='python3', progress_bar=False, log_output=False)
    res['floor: papermill kernel start + one cell'] = round(time.perf_counter() - t0, 2)
    for st in NOOP_STEPS:
        t0 = time.perf_counter(); subprocess.run([sys.executable, '-c', f'import cmer.{st}'], check=True)
        res[f'floor: import cmer.{st}'] = round(time.perf_counter() - t0, 2)
    say(f"no-op floor: papermill kernel + one cell {res['floor: papermill kernel start + one cell']} s; imports "
        + ', '.join(f"{st} {res['floor: import cmer.' + st]} s" for st in NOOP_STEPS) + ' (python -c, interpreter start included)')
    return res


# ------------------------------------------------------------------------------------------------------------- main
def verdicts(result:dict) -> dict:
    "Which targets are met, and for a missed one the stage that bounds it (measured)."
    v = {}
    runs = result.get('chain') or []
    if runs:
        best = min(runs, key=lambda r: r['extrapolated']['IEMOCAP 4-class (5,531 utt.)']['s_per_utt'])
        ext = best['extrapolated']['IEMOCAP 4-class (5,531 utt.)']
        worst = max(ext['seconds'].items(), key=lambda kv: kv[1])
        st = next(s for s in best['steps'] if s['step'] == worst[0])
        v['chain_s_per_utt'] = dict(target=f"<= {TARGETS['chain_s_per_utt']} s/utt (5,531 utt. in 30 min)", measured=best['s_per_utt'],
                                    extrapolated_5531=ext['s_per_utt'], minutes_5531=ext['total_minutes'], workers=best['workers'],
                                    met=ext['s_per_utt'] <= TARGETS['chain_s_per_utt'],
                                    bound_by=f"{worst[0]} ({worst[1]:.0f} s of {ext['total_seconds']:.0f} s at 5,531 utt.)",
                                    bound_stages={k: v_ for k, v_ in st['stages'].items() if isinstance(v_, (int, float))})
    asr = result.get('asr') or {}
    step_rows = {k: r for k, r in asr.items() if k.startswith('step,') and 'audio_s_per_s' in r}
    chain_rates = {f"chain, {r['workers']} worker(s)": next((s['stages'].get('asr_audio_s_per_wall_s') for s in r['steps'] if s['step'] == 'audio_aug'), None)
                   for r in runs}
    if step_rows:
        best = max(step_rows.values(), key=lambda r: r['audio_s_per_s'])
        v['asr_audio_s_per_s'] = dict(target=f">= {TARGETS['asr_audio_s_per_s']} audio-s/s",
                                      measured={k: r['audio_s_per_s'] for k, r in step_rows.items()}, in_chain=chain_rates,
                                      wer={k: r['wer'] for k, r in step_rows.items()}, met=best['audio_s_per_s'] >= TARGETS['asr_audio_s_per_s'])
    emb = result.get('embed') or {}
    steps = [(k, x) for k, x in emb.items() if k.startswith('step_w')]
    if steps:
        v['embed_ratio'] = dict(target=f">= {TARGETS['embed_ratio']:.0%} of the bare call", measured={k: x['ratio'] for k, x in steps},
                                met=all(x['ratio'] >= TARGETS['embed_ratio'] for _, x in steps))
    noop = result.get('noop') or {}
    nothing = {k: x['step_seconds'] for k, x in noop.items() if k.startswith('nothing to do') and isinstance(x, dict)}
    if nothing:
        default = {k: x for k, x in nothing.items() if 'checks always' not in k}
        v['noop_s'] = dict(target=f"<= {TARGETS['noop_s']} s", measured=nothing, met=max(default.values()) <= TARGETS['noop_s'],
                           floor_kernel=noop.get('floor: papermill kernel start + one cell'))
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=1000, help='utterances of the demo corpus (5 sessions of n/5)')
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2], help='local worker counts (CMER_JOBS and frames n_jobs)')
    ap.add_argument('--out', default=os.path.join(tempfile.gettempdir(), 'cmer-bench-chain'), help='work folder (corpus, output roots)')
    ap.add_argument('--steps', nargs='*', help='steps of the chain to time (default: all)')
    ap.add_argument('--reuse-corpus', action='store_true', help='keep a demo corpus already built in --out')
    ap.add_argument('--parts', default='chain,asr,embed,noop', help='comma-separated: chain, asr, embed, noop')
    ap.add_argument('--asr-n', type=int, default=150, help='utterances for the ASR measurement')
    ap.add_argument('--asr-parts', default='step,alternatives', help="'step' or 'step,alternatives'")
    ap.add_argument('--checks', default='never', help="cmer run --checks for the timed chains (default never: both worker counts time "
                    "the same work; the chapters' checks, run once per code version, are timed by the noop part)")
    ap.add_argument('--sessions', type=int, default=5); ap.add_argument('--fps', type=int, default=15)
    ap.add_argument('--json', default=str(Path(__file__).parent/'results'/'bench_chain.json'))
    a = ap.parse_args()
    work = Path(a.out); work.mkdir(parents=True, exist_ok=True)
    parts = set(a.parts.split(','))
    import torch
    result = dict(data_label=f'{LABEL}: espeak-ng speech of real IEMOCAP transcripts with rendered faces (cmer demo corpus)',
                  command=' '.join([Path(sys.executable).name, *sys.argv]), started=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
                  machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(), torch=torch.__version__,
                               load_at_start=[round(x, 2) for x in os.getloadavg()]),
                  targets=TARGETS)
    checks_flag = chain_has_checks()
    corpus, info = build_corpus(a, work)
    result['corpus'] = info
    n, audio_s = info['n_utterances'], info['audio_seconds']
    runs = []
    if 'chain' in parts:
        for w in a.workers:
            r = run_chain_once(a, corpus, work, w, n, audio_s, a.checks if checks_flag else None)
            r['extrapolated'] = extrapolate(r, n, audio_s)
            runs.append(r)
            result['chain'] = runs; save(a, result)
        print_chain_table(runs, n)
        if len(runs) > 1:                            # the texts of the ASR -> MT -> TTS round trip do not depend on the workers
            from cmer.audio_aug import load_audio_aug
            try:
                t = [load_audio_aug(r['out'])[['utt_id', 'asr_text', 'text_aug']] for r in runs]
                result['audio_aug_same_texts_across_workers'] = all(x.equals(t[0]) for x in t[1:])
                say(f"audio_aug texts identical for {[r['workers'] for r in runs]} workers: {result['audio_aug_same_texts_across_workers']}")
            except FileNotFoundError: pass
            # the evaluation's folds run in CMER_JOBS processes: the same predictions whatever the workers
            pr = [pd.read_csv(Path(r['out'])/'results'/'predictions.csv') for r in runs if (Path(r['out'])/'results'/'predictions.csv').exists()]
            if len(pr) == len(runs):
                result['evaluate_same_predictions_across_workers'] = all(x.equals(pr[0]) for x in pr[1:])
                say(f"evaluate predictions identical for {[r['workers'] for r in runs]} workers: {result['evaluate_same_predictions_across_workers']}")
        for r in runs:
            for name, e in r['extrapolated'].items():
                say(f"  extrapolated, {r['workers']} worker(s), {name}: {e['total_minutes']} min = {e['s_per_utt']} s/utt "
                    f"({e['audio_hours']} h audio)")
    if 'asr' in parts: result['asr'] = asr_bench(a, corpus, work); save(a, result)
    if 'embed' in parts: result['embed'] = embed_bench(a, runs, corpus, work); save(a, result)
    if 'noop' in parts: result['noop'] = noop_bench(a, runs, corpus, work, checks_flag); save(a, result)
    result['machine']['load_at_end'] = [round(x, 2) for x in os.getloadavg()]
    result['finished'] = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    result['verdicts'] = verdicts(result)
    for k, v in result['verdicts'].items(): say(f"target {k}: {v['target']}: {'MET' if v['met'] else 'MISSED'} ({json.dumps(v)})")
    save(a, result)


def save(a, result):
    p = Path(a.json); p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix('.tmp'); tmp.write_text(json.dumps(result, indent=1) + '\n'); os.replace(tmp, p)


if __name__ == '__main__':
    main()
