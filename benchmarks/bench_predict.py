"""`cmer predict` benchmark: seconds of processing per second of input media, split by stage.

    python benchmarks/bench_predict.py [--video FILE] [--sentences N] [--model CHECKPOINT] [--repeat 2]

Without --video it makes a talking-head clip of N sentences (default 16, about a minute) with `cmer.predict.make_clip`:
espeak-ng speech over FER2013 faces of the sentence's class (SYNTHETIC), 480x240 at 10 frames/s, mpeg4 + AAC in MP4.
The first run is cold (it loads Whisper, MiniLM, the FER CNN and the model, and librosa compiles its MFCC code);
the next ones are warm (models cached in the process), as for a second file in one session. Real time = 1.0:
below it, processing is faster than playing the file. The machine is shared: the load average is printed too.
"""
from __future__ import annotations
import argparse, os, sys, tempfile, time
from pathlib import Path

SENTENCES = [
    ('hap', 'I am so happy to see you again, this is wonderful news!'),
    ('neu', 'The meeting starts at ten and we will review the budget.'),
    ('ang', 'Stop it right now, I told you a hundred times already!'),
    ('sad', 'I miss her so much, nothing feels the same without her.'),
    ('hap', 'We won the game last night, everybody was cheering!'),
    ('neu', 'Please put the files on my desk before you leave.'),
    ('ang', 'This is completely unacceptable and you know it!'),
    ('sad', 'He never came back, and I waited for him all winter.'),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--video', help='a video or audio file (default: a generated talking-head clip)')
    ap.add_argument('--sentences', type=int, default=16, help='sentences of the generated clip')
    ap.add_argument('--model', help='checkpoint for --model (default: the shipped default model)')
    ap.add_argument('--repeat', type=int, default=2, help='runs (the first is cold)')
    a = ap.parse_args(argv)
    import torch
    from cmer.predict import make_clip, predict, load_predictor, probe_media
    tmp = Path(tempfile.mkdtemp(prefix='bench_predict_'))
    if a.video: video = Path(a.video)
    else:
        t0 = time.perf_counter()
        video = make_clip(tmp/'talking_head.mp4', [SENTENCES[i % len(SENTENCES)] for i in range(a.sentences)], pause=0.8)
        print(f"made {video.name} (SYNTHETIC: espeak-ng speech over FER2013 faces) in {time.perf_counter() - t0:.1f} s")
    dur = probe_media(video)['duration']
    print(f"input: {video} ({dur:.1f} s); torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    runs = []
    for r in range(a.repeat):
        t0 = time.perf_counter()
        pred = load_predictor(a.model)
        t_load = time.perf_counter() - t0
        res = predict(video, pred, out=tmp/f'out{r}', progress=False)
        s = dict(res['seconds']); s['load_model'] = t_load; s['total'] += t_load
        runs.append(s)
        print(f"run {r + 1} ({'cold' if r == 0 else 'warm'}): {len(res['table'])} segments, {s['total']:.1f} s "
              f"= {s['total'] / dur:.3f} s per second of media; load average {os.getloadavg()[0]:.2f}")
    stages = ['load_model', 'audio', 'vad', 'frames_faces', 'asr', 'text_embed', 'mfcc', 'face_model', 'model', 'outputs']
    print(f"\nseconds per second of media ({dur:.1f} s input), by stage:")
    print(f"{'stage':<14}" + ''.join(f"{('cold' if i == 0 else f'warm {i}'):>10}" for i in range(len(runs))))
    for st in stages + ['total']:
        print(f"{st:<14}" + ''.join(f"{r.get(st, 0) / dur:>10.3f}" for r in runs))
    best = min(r['total'] for r in runs)
    print(f"\nbest: {best / dur:.3f} s per second of media ({'faster' if best < dur else 'SLOWER'} than real time); "
          f"cold: {runs[0]['total'] / dur:.3f}")
    print(res['summary'].splitlines()[0])


if __name__ == '__main__':
    main()
