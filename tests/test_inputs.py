"""Valid or near-valid input runs to the end, and invalid parameters are refused before any work (issue 19 items 1-2): a
step's own checks never assert on the user's corpus; a bad item is a counted, named failure; a parameter out of range is
one clear line naming it."""
import json, shutil, subprocess
from pathlib import Path
from conftest import CMER


def cmer(*args, timeout=900):
    return subprocess.run([CMER, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def errors(r):
    "stderr's lines: one error line and nothing else (no stray `[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`, issue 19 item 10)."
    return r.stderr.strip().splitlines()


def manifest(out, step): return json.loads((Path(out)/step/'manifest.json').read_text())


def test_bad_wavs_are_failures_of_their_own(tiny_corpus, tmp_path):
    "The first wav 0 bytes, another a text file: step 04 names both and writes the rest (before: KeyError from its run-section checks)."
    c = tmp_path/'corpus'; shutil.copytree(tiny_corpus, c)
    wavs = sorted(c.glob('Session1/sentences/wav/*/*.wav'))
    wavs[0].write_bytes(b''); wavs[1].write_text(Path('/etc/passwd').read_text() if Path('/etc/passwd').exists() else 'root:x:0:0\n')
    b = wavs[2].read_bytes(); wavs[2].write_bytes(b[:44 + (len(b) - 44) // 2])       # cut short: its header still declares all of it
    r = cmer('run', '--corpus', c, '--out', tmp_path/'out', '--steps', '1', '4', '--checks', 'never')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    fails = {f['item']: f['error'] for f in manifest(tmp_path/'out', 'mfcc')['failures']}
    assert 'empty file (0 bytes)' in fails[f'{wavs[0].stem} (mfcc)'] and 'not a readable audio file' in fails[f'{wavs[1].stem} (mfcc)'], fails
    assert manifest(tmp_path/'out', 'mfcc')['report']['mfcc']['n_features'] == 38
    assert any(f'{wavs[2]}: TRUNCATED: its data chunk declares' in w for w in manifest(tmp_path/'out', 'mfcc')['warnings'])   # issue 19 item 5


def test_image_augmentation_switched_off_runs(tiny_corpus, tmp_path):
    "Every probability 0 is a valid control run: a note, not `AssertionError: {... 'utterances_changed': 0.0 ...}`."
    r = cmer('run', '--corpus', tiny_corpus, '--out', tmp_path/'out', '--steps', '1', '5', '6', '8', '--checks', 'never',
             '-p', 'p_flip=0', '-p', 'p_color=0', '-p', 'p_rotate=0')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    m = manifest(tmp_path/'out', 'image_aug')
    assert m['report']['utterances_changed'] == 0.0 and any('every augmentation probability' in w for w in m['warnings']), m


def test_parameters_out_of_range_are_refused_before_any_work(tiny_corpus, tmp_path):
    out = tmp_path/'out'
    for p, msg in [('n_mfcc=-5', 'n_mfcc=-5 (expected an integer >= 1)'), ('n_mfcc=0', 'n_mfcc=0 (expected an integer >= 1)'),
                   ('hop_ms=0', 'hop_ms=0.0 (expected milliseconds > 0)')]:
        r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', '1', '4', '--checks', 'never', '-p', p)
        assert r.returncode == 1 and msg in r.stderr and 'Traceback' not in r.stderr, (p, r.stderr)
        assert len(errors(r)) == 1, r.stderr
        assert not (out/'features').exists() and not (out/'mfcc'/'manifest.json').exists()
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', '8', '--checks', 'never', '-p', 'p_flip=1.5')
    assert r.returncode == 1 and 'p_flip=1.5 (expected a probability in [0, 1])' in r.stderr, r.stderr


def test_demo_corpus_sizes(tmp_path):
    "`--per-session 2-4` makes a corpus (before: `cmer: error: (1, 'M')`); 0 or `--sessions 0` say what is wrong (before: `'session'`)."
    r = cmer('demo-corpus', tmp_path/'two', '--sessions', '1', '--per-session', '3', '--fps', '5', '--jobs', '1')
    assert r.returncode == 0, r.stderr
    from cmer.corpus import read_iemocap
    df, rep = read_iemocap(tmp_path/'two')
    assert len(df) == 3 and set(df.gender) == {'F', 'M'} and rep['missing_wav'] == []
    for args, msg in [(('--per-session', '0'), 'per_session=0 (expected an integer >= 2'), (('--sessions', '0'), 'sessions=0 (expected an integer from 1 to 99')]:
        r = cmer('demo-corpus', tmp_path/'x', *args)
        assert r.returncode == 1 and msg in r.stderr and len(errors(r)) == 1, r.stderr
        assert not (tmp_path/'x').exists()


def test_steps_leave_no_temporary_files(tmp_path, monkeypatch):
    "Everything a step makes goes under its output folder or is removed (issue 19 item 10: `cmer-tts-*/say.wav` was never removed)."
    import tempfile, numpy as np, soundfile as sf
    from cmer.corpus import write_fixture_corpus, corpus_step
    from cmer.demo import synthesize
    from cmer.audio_aug import audio_aug_step
    from cmer.mfcc import mfcc_step
    from cmer.frames import frames_step
    from cmer.media import SR
    private = tmp_path/'tmp'; private.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(private))                 # this process' temporary folder: nothing else writes here
    fx = write_fixture_corpus(tmp_path/'fixture')
    w = fx/'Session1'/'sentences'/'wav'/'Ses01F_impro01'
    sf.write(w/'Ses01F_impro01_F000.wav', synthesize('Excuse me.', voice='en-us+f2', rate=150, pitch=60, amp=100), SR, subtype='PCM_16')
    sf.write(w/'Ses01F_impro01_M000.wav', synthesize('That is great!', voice='en-us+m2', rate=150, pitch=40, amp=100), SR, subtype='PCM_16')
    out = tmp_path/'out'
    corpus_step(fx, out, label_map='6class')
    m = audio_aug_step(fx, out, tts='pyttsx3')
    assert m['report']['n_augmented'] == 2, m['report']
    mfcc_step(fx, out); frames_step(fx, out)
    assert list(private.iterdir()) == []
