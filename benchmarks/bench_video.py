"""Video steps benchmark: frames/s of frame extraction and frame embedding next to ffmpeg's raw decode speed.

    python benchmarks/bench_video.py [--corpus DIR] [--iemocap-size SECONDS] [--no-clip] [--demo-accuracy]

Measures, on the demo corpus' dialog videos (SYNTHETIC, 480x240, 10 frames/s) and on a generated
IEMOCAP-sized video (720x480, 30 frames/s, mpeg4 in AVI, test pattern: no faces):

- ffmpeg raw decode: `ffmpeg -i VIDEO -f null -` (every frame decoded, nothing written), and decoding every
  frame to RGB through a pipe (what a Python reader of all frames pays);
- extraction as the frames step does it: one ffmpeg per dialog with the `select` filter (decode once), with
  and without face detection, against the per-utterance alternative (one seeking ffmpeg per utterance);
- embedding of 96x96 face crops: the FER encoder, and a random CLIP model with ViT-B/32's exact architecture
  (the speed of the real network; no weights are needed for timing).

With --demo-accuracy it also measures the shipped FER encoder's 4-class accuracy on the demo corpus' faces
(SYNTHETIC video; the faces are FER2013 *validation* images, which chose the encoder's epoch).
Every number is measured here; the machine is shared, so the load average is printed with them.
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np


def _timeit(fn, repeat=3):
    best = float('inf')
    for _ in range(repeat):
        t0 = time.perf_counter(); r = fn(); best = min(best, time.perf_counter() - t0)
    return best, r


def make_iemocap_sized(path: Path, seconds: int) -> Path:
    "A 720x480, 30 frames/s mpeg4 AVI test pattern, the size of an IEMOCAP dialog video."
    if not path.exists():
        subprocess.run(['ffmpeg', '-v', 'error', '-y', '-f', 'lavfi', '-i', f'testsrc2=s=720x480:r=30:d={seconds}',
                        '-c:v', 'mpeg4', '-q:v', '4', str(path)], check=True)
    return path


def ffmpeg_null(video) -> float:
    subprocess.run(['ffmpeg', '-v', 'error', '-nostdin', '-i', str(video), '-an', '-f', 'null', '-'], check=True)


def ffmpeg_rgb_pipe(video, w, h) -> int:
    p = subprocess.Popen(['ffmpeg', '-v', 'error', '-nostdin', '-i', str(video), '-an', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
                         stdout=subprocess.PIPE)
    n, size = 0, w * h * 3
    while len(p.stdout.read(size)) == size: n += 1
    p.wait(); return n


def per_utterance_seek(video, utts, fps, max_frames, info) -> int:
    "The alternative to decode-once: one ffmpeg per utterance, seeking to its start (still only its own frames)."
    from cmer.frames import plan_frames
    n = 0
    for u in utts:
        fr = plan_frames(u['start'], u['end'], info, fps, max_frames)
        sel = '+'.join(f'eq(n\\,{k - fr[0]})' for k in fr)
        p = subprocess.run(['ffmpeg', '-v', 'error', '-nostdin', '-ss', f"{fr[0] / info['fps']:.4f}", '-i', str(video), '-an',
                            '-vf', f"select='{sel}'", '-fps_mode', 'passthrough', '-frames:v', str(len(fr)),
                            '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], capture_output=True, check=True)
        n += len(p.stdout) // (info['width'] * info['height'] * 3)
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--corpus', help='IEMOCAP-layout corpus (default: the tiny SYNTHETIC demo corpus)')
    ap.add_argument('--iemocap-size', type=int, default=60, help='seconds of the generated 720x480 30 fps video (0: skip)')
    ap.add_argument('--no-clip', action='store_true', help='skip the CLIP ViT-B/32 timing')
    ap.add_argument('--demo-accuracy', action='store_true', help="FER encoder's 4-class accuracy on the demo corpus faces")
    a = ap.parse_args(argv)
    import torch
    from cmer.corpus import read_iemocap, apply_label_map
    from cmer.demo import tiny_paths
    from cmer.frames import probe_video, extract_dialog, plan_frames, decode_frames
    from cmer.frame_embed import load_frame_encoder, write_random_clip

    corpus = Path(a.corpus) if a.corpus else tiny_paths()[0]
    df, _ = read_iemocap(corpus)
    df = df[df.video != '']
    synthetic = (corpus/'demo_corpus.json').exists()
    tag = ' (SYNTHETIC demo)' if synthetic else ''
    rows = []
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; torch threads {torch.get_num_threads()}", flush=True)

    # --- decode and extraction on the corpus' dialog videos
    videos = sorted(df.video.unique())
    infos = {v: probe_video(v) for v in videos}
    n_all = sum(i['n_frames'] for i in infos.values())
    t, _ = _timeit(lambda: [ffmpeg_null(v) for v in videos])
    rows.append((f'ffmpeg raw decode, every frame (-f null){tag}', n_all, n_all, t))
    t, n = _timeit(lambda: sum(ffmpeg_rgb_pipe(v, infos[v]['width'], infos[v]['height']) for v in videos))
    rows.append((f'ffmpeg decode to an RGB pipe, every frame{tag}', n, n, t))
    opts = dict(fps=2.0, max_frames=12, side='speaker', speaker_sides={'F': 'left', 'M': 'right'}, crop_size=96, margin=1.07)
    tasks = lambda det: [dict(video=v, utts=g[['utt_id', 'start', 'end', 'gender']].to_dict('records'), opts=dict(opts, detect_faces=det))
                         for v, g in df.groupby('video')]
    t, res = _timeit(lambda: [extract_dialog(x) for x in tasks(False)])
    n_sel = sum(len(u['times']) for r in res for u in r['utts'].values())
    rows.append((f'extraction: decode once per dialog, no face detection{tag}', n_sel, n_all, t))
    t, res = _timeit(lambda: [extract_dialog(x) for x in tasks(True)], repeat=1)
    rows.append((f'extraction: decode once per dialog + Haar face crop{tag}', n_sel, n_all, t))
    t, n = _timeit(lambda: sum(per_utterance_seek(v, g.to_dict('records'), 2.0, 12, infos[v]) for v, g in df.groupby('video')), repeat=1)
    rows.append((f'extraction: one seeking ffmpeg per utterance, no face detection{tag}', n, None, t))
    crops = np.concatenate([u['images'] for r in res for u in r['utts'].values()])

    # --- an IEMOCAP-sized video
    tmp = Path(tempfile.mkdtemp())
    if a.iemocap_size:
        big = make_iemocap_sized(tmp/'iemocap_sized.avi', a.iemocap_size)
        bi = probe_video(big)
        t, _ = _timeit(lambda: ffmpeg_null(big))
        rows.append(('ffmpeg raw decode, every frame (-f null), 720x480 30 fps', bi['n_frames'], bi['n_frames'], t))
        starts = np.arange(1.0, a.iemocap_size - 5, 6.0)        # a 4.5 s utterance every 6 s, as in an IEMOCAP dialog
        utts = [dict(utt_id=f'Ses01F_impro01_F{i:03d}', start=float(s), end=float(s + 4.5), gender='F') for i, s in enumerate(starts)]
        task = dict(video=str(big), utts=utts, opts=dict(opts, side='whole', detect_faces=False))
        t, r = _timeit(lambda: extract_dialog(task))
        rows.append(('extraction: decode once per dialog, no face detection, 720x480', sum(len(u['times']) for u in r['utts'].values()), bi['n_frames'], t))
        t, r = _timeit(lambda: extract_dialog(dict(task, opts=dict(task['opts'], detect_faces=True))), repeat=1)
        rows.append(('extraction: decode once + Haar (no face: full search), 720x480', sum(len(u['times']) for u in r['utts'].values()), bi['n_frames'], t))
        t, n = _timeit(lambda: per_utterance_seek(big, utts, 2.0, 12, bi), repeat=1)
        rows.append(('extraction: one seeking ffmpeg per utterance, no face detection, 720x480', n, None, t))

    # --- embedding
    crops = np.concatenate([crops] * max(1, 512 // len(crops)))[:512]
    fer = load_frame_encoder('fer')
    fer.encode(crops[:64])
    t, _ = _timeit(lambda: fer.encode(crops))
    rows.append(('embedding: FER encoder (96x96 crops -> 256-d)', len(crops), None, t))
    if not a.no_clip:
        clip = load_frame_encoder('clip', write_random_clip(tmp/'clip-b32', size='base'), batch_size=32)
        c = crops[:128]; clip.encode(c[:8])
        t, _ = _timeit(lambda: clip.encode(c), repeat=2)
        rows.append(('embedding: CLIP ViT-B/32 image tower (random weights, real architecture)', len(c), None, t))
        texts = df.transcript.tolist()[:64]
        t, _ = _timeit(lambda: clip.encode_text(texts), repeat=2)
        rows.append(('embedding: CLIP ViT-B/32 text tower, transcripts/s (byte-level test tokenizer: ~4x the tokens of BPE)', len(texts), None, t))

    w = max(len(r[0]) for r in rows)
    print(f"\n{'what':<{w}}  {'frames':>7}  {'seconds':>8}  {'frames/s':>9}  {'decoded/s':>9}")
    for name, n, dec, t in rows: print(f"{name:<{w}}  {n:>7}  {t:>8.3f}  {n / t:>9.1f}  {dec / t if dec else float('nan'):>9.1f}")
    print("frames: frames delivered (ffmpeg rows: every frame of the videos; extraction rows: the frames the step keeps, "
          "fps=2, at most 12 per utterance, side='speaker' on the demo, 'whole' on the 720x480 video); "
          "decoded/s: video frames decoded per second (seeking decodes only near each utterance)")
    print(f"best of up to 3 runs; load average now {os.getloadavg()[0]:.2f}")

    if a.demo_accuracy: demo_accuracy(df, synthetic)
    shutil.rmtree(tmp, ignore_errors=True)


def demo_accuracy(df, synthetic):
    "The shipped FER encoder on the demo corpus' speaker faces: utterance-level 4-class accuracy by frame choice."
    from cmer.frames import extract_dialog
    from cmer.frame_embed import load_frame_encoder, intensity_scores, top_k, select_uniform
    from cmer.fer import FER_CLASSES, IEMOCAP4
    lab = df.set_index('utt_id')
    cls4 = ['neu', 'ang', 'sad', 'hap']
    idx4 = [FER_CLASSES.index(IEMOCAP4[c]) for c in cls4]
    opts = dict(fps=2.0, max_frames=12, side='speaker', speaker_sides={'F': 'left', 'M': 'right'}, crop_size=96, margin=1.07, detect_faces=True)
    res = [extract_dialog(dict(video=v, utts=g[['utt_id', 'start', 'end', 'gender']].to_dict('records'), opts=opts)) for v, g in df.groupby('video')]
    fer = load_frame_encoder('fer')
    hits = {'all frames': [], 'intensity top-4': [], 'uniform 4': []}
    n_frames = n_face = 0
    for r in res:
        for u, d in r['utts'].items():
            raw = lab.loc[u, 'label_raw']; y = {'exc': 'hap'}.get(raw, raw)
            if y not in cls4: continue
            e = fer.encode(d['images']); p = e['probs']
            n_frames += len(p); n_face += int(d['face'].sum())
            for name, sel in [('all frames', np.arange(len(p))), ('intensity top-4', top_k(intensity_scores(p, d['face'], FER_CLASSES), 4)),
                              ('uniform 4', select_uniform(len(p), 4))]:
                hits[name].append(cls4[int(np.argmax(p[sel][:, idx4].mean(0)))] == y)
    n = len(hits['all frames'])
    print(f"\nFER encoder, 4-class accuracy per utterance on the demo corpus faces (side='speaker'; {n} utterances, "
          f"{n_frames} frames, {n_face} with a detected face)")
    print("SYNTHETIC video; its faces are FER2013 validation images, which chose the encoder's epoch: an optimistic, "
          "pipeline-level check, not a result.")
    for name, h in hits.items(): print(f"  {name:<16} {np.mean(h):.3f}  ({sum(h)}/{n})")


if __name__ == '__main__':
    main()
