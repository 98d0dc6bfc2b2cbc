"`cmer predict` on a clip made here (espeak-ng speech over rendered faces, muxed with ffmpeg): segments, shapes, probabilities, outputs, bad input."
import json, subprocess
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

from conftest import CMER

SENTENCES = [('hap', 'I am so happy to see you again, this is wonderful!'),
             ('ang', 'Stop it right now, I told you a hundred times!')]
OUTPUTS = ['segments.csv', 'segments.json', 'summary.txt', 'timeline.png']


def _real_faces() -> bool:
    "make_clip draws FER2013 faces when the data folder has them; its cartoon faces otherwise, which the face detector often misses."
    from cmer.demo import fer_faces
    from cmer.core import get_config
    return fer_faces(get_config().data_dir) is not None


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    "A talking-head clip with speech, the same without its audio track, a text file, an empty file, a wav."
    from cmer.predict import make_clip, extract_audio
    import soundfile as sf
    d = tmp_path_factory.mktemp('media')
    clip = make_clip(d/'clip.mp4', SENTENCES)
    silent = make_clip(d/'silent.mkv', SENTENCES[:1], audio=False)
    (d/'notes.mp4').write_text('this is not a video\n'); (d/'empty.webm').touch()
    sf.write(d/'speech.wav', extract_audio(clip), 16000)
    return dict(dir=d, clip=clip, silent=silent, text=d/'notes.mp4', empty=d/'empty.webm', wav=d/'speech.wav')


@pytest.fixture(scope='module')
def av_checkpoint(tmp_path_factory):
    "A chain-style checkpoint (a UnifiedModel over audio and text, meta as cmer.evaluate writes it), untrained."
    import torch
    from cmer.model import UnifiedModel, save_checkpoint
    from cmer.mfcc import mfcc_settings
    torch.manual_seed(0)
    m = UnifiedModel({'audio': 20, 'text': 384}, 4).eval()
    p = tmp_path_factory.mktemp('ckpt')/'model.pt'
    meta = dict(features={'mfcc': dict(kind='mfcc', **mfcc_settings()), 'text': dict(kind='text', model='minilm', dim=384, normalize=True)},
                synthetic=True, protocol='loso')
    return save_checkpoint(p, m, ['neu', 'ang', 'sad', 'hap'], meta=meta)


def _cli(args, capsys):
    "`cmer ARGS` in this process (models stay loaded between tests): exit status, stdout, stderr."
    from cmer.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in args])
    o = capsys.readouterr()
    return rc, o.out, o.err


def _check_outputs(out: Path, n_min: int = 1) -> pd.DataFrame:
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    t = pd.read_csv(out/'segments.csv', keep_default_na=False, na_values=[''])
    j = json.loads((out/'segments.json').read_text())
    assert len(t) == len(j['segments']) == j['n_segments'] >= n_min
    assert (out/'timeline.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (t.start < t.end).all() and (t.start.diff().fillna(1) > 0).all()
    for src in ('audio', 'video', 'text', 'fused'):
        cols = [f'p_{src}_{c}' for c in j['classes']]
        if cols[0] not in t: continue
        p = t[cols].to_numpy(float)
        has = ~np.isnan(p).any(1)
        assert np.allclose(p[has].sum(1), 1, atol=1e-3), src
    assert t.label.isin(j['classes']).all()
    # the JSON schema (issue 19 item 11): a version, the same keys for every model and file, probabilities as class -> p
    assert j['schema_version'] == 1 and set(SCHEMA_KEYS) <= set(j) and set(j['decoded_duration']) == {'audio', 'video'}, sorted(j)
    for sj, (_, r) in zip(j['segments'], t.iterrows()):
        assert list(sj) == SEGMENT_KEYS and list(sj['probabilities']) == ['fused', 'audio', 'video', 'text'], sj
        assert set(sj['modalities']) <= {'A', 'V', 'T'} and sj['modalities'] == (r.modalities if isinstance(r.modalities, str) else '')
        for src, pr in sj['probabilities'].items():
            assert pr is None or (list(pr) == j['classes'] and abs(sum(pr.values()) - 1) < 1e-3), (src, pr)
            assert (pr is None) == (src != 'fused' and src not in j['modalities'] or f'p_{src}_{j["classes"][0]}' not in t
                                    or np.isnan(r[f'p_{src}_{j["classes"][0]}'])), (src, pr)
    return t


SCHEMA_KEYS = ['schema_version', 'file', 'corpus_kind', 'synthetic', 'paired', 'model_synthetic', 'duration', 'declared_duration',
               'decoded_duration', 'analysed', 'truncated', 'has_audio', 'has_video', 'model', 'model_card', 'classes', 'class_names',
               'modalities', 'segmentation', 'notes', 'n_segments', 'segments']
SEGMENT_KEYS = ['segment', 'start', 'end', 'transcript', 'modalities', 'n_frames', 'n_faces', 'label', 'emotion', 'confidence', 'probabilities']


def test_predict_clip_python(media, tmp_path):
    "Two spoken sentences over a face: two segments, all three modalities, Whisper's words, probabilities summing to 1."
    from cmer.predict import predict
    res = predict(media['clip'], out=tmp_path/'out', progress=False)
    t = _check_outputs(tmp_path/'out', 2)
    assert len(t) == 2 and all({'A', 'T'} <= set(m) for m in t.modalities)
    if _real_faces(): assert list(t.modalities) == ['AVT', 'AVT'] and (t.n_faces > 0).all()
    assert 'happy' in t.transcript[0].lower() and 'hundred' in t.transcript[1].lower()
    assert 0.4 < t.start[0] < 0.8 and t.end[1] < res['info']['duration']
    for src in ('audio', 'video', 'text', 'fused'): assert res['scores'][src].shape == (2, 4)
    assert res['info']['classes'] == ['neu', 'ang', 'sad', 'hap'] and not res['info']['notes']


def test_predict_cli_audio_only(media, tmp_path, capsys):
    "The command on a wav: audio and text only, the summary on stdout, a note that there is no face."
    out = tmp_path/'wav_out'
    rc, stdout, err = _cli(['predict', media['wav'], '--out', out, '--no-progress'], capsys)
    assert rc == 0, err
    t = _check_outputs(out, 2)
    assert set(t.modalities) == {'AT'} and t.filter(like='p_video_').isna().all().all()
    assert 'segment(s)' in stdout and 'audio file: no face modality' in stdout and 'segments.csv' in stdout


def test_predict_silent_video(media, tmp_path):
    "A video without an audio track: face-only segments over fixed windows, and a note saying so."
    from cmer.predict import predict
    if not _real_faces(): pytest.skip('no FER2013 faces in the data folder (CMER_DATA): the drawn faces are not reliably detected')
    res = predict(media['silent'], out=tmp_path/'s', window=2.0, progress=False)
    t = _check_outputs(tmp_path/'s')
    assert set(t.modalities) == {'V'} and 'no audio track' in ' '.join(res['info']['notes'])
    assert np.allclose(t.end - t.start, t.end[0] - t.start[0], atol=0.01)


def test_chain_checkpoint_loads_through_model_option(media, av_checkpoint, tmp_path, capsys):
    "A checkpoint as the chain writes it (audio+text) runs on the clip's modalities it reads; the frames are not used."
    out = tmp_path/'ck'
    rc, stdout, err = _cli(['predict', media['clip'], '--model', av_checkpoint, '--out', out, '--no-progress'], capsys)
    assert rc == 0, err
    t = _check_outputs(out, 2)
    assert set(t.modalities) == {'AT'} and not any(c.startswith('p_video_') for c in t.columns)
    assert 'reads no video' in stdout
    # its meta says it was trained on the SYNTHETIC demo corpus: the summary, the JSON and the timeline's title say so
    j = json.loads((out/'segments.json').read_text())
    assert j['model_synthetic'] is True and j['notes'][0].startswith('SYNTHETIC model') and 'SYNTHETIC' in stdout.splitlines()[0]
    assert 'SYNTHETIC' in (out/'summary.txt').read_text().splitlines()[0] and 'cmer: warning: SYNTHETIC model' in err


@pytest.mark.parametrize('case, message', [('missing', 'no such file'), ('text', 'not an audio or video file'),
                                           ('empty', 'empty file'), ('silent_needs_audio', 'no audio track')])
def test_bad_input(media, av_checkpoint, tmp_path, capsys, case, message):
    "Bad input: one clear line, exit status 1, nothing in --out (not even the folder)."
    out = tmp_path/'out'
    f = {'missing': media['dir']/'nope.mp4', 'text': media['text'], 'empty': media['empty'], 'silent_needs_audio': media['silent']}[case]
    args = ['predict', f, '--out', out] + (['--model', av_checkpoint] if case == 'silent_needs_audio' else [])
    rc, _, err = _cli(args, capsys)
    assert rc == 1
    err = err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('cmer: error: ') and message in err[0] and f.name in err[0], err
    assert not out.exists()


def test_console_script_bad_input(media, tmp_path):
    "The installed `cmer` program: a file that is not media gives one error line and exit status 1."
    r = subprocess.run([CMER, 'predict', str(media['text']), '--out', str(tmp_path/'o')], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == f"cmer: error: {media['text']}: not an audio or video file " \
        f"({media['text']}: Invalid data found when processing input)", r.stderr
    assert not (tmp_path/'o').exists()


def test_existing_out_keeps_other_files(media, tmp_path):
    "A failed run leaves an existing --out untouched; a good one adds its four files next to what is there."
    from cmer.predict import predict, MediaError
    out = tmp_path/'o'; out.mkdir(); (out/'mine.txt').write_text('keep')
    with pytest.raises(MediaError): predict(media['text'], out=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ['mine.txt']
    predict(media['wav'], out=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS + ['mine.txt'])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_truncated_video_says_what_was_analysed(media, tmp_path, capsys):
    "A clip cut to 40 % of its bytes whose header survives (mkv): the span analysed against the declared one, a warning, the JSON fields."
    from cmer.predict import make_clip
    full = make_clip(tmp_path/'full.mkv', SENTENCES)
    cut = tmp_path/'cut.mkv'; b = full.read_bytes(); cut.write_bytes(b[:int(len(b) * 0.4)])
    out = tmp_path/'cut_out'
    rc, stdout, err = _cli(['predict', cut, '--out', out, '--no-progress'], capsys)
    assert rc == 0, err
    t = _check_outputs(out)
    j = json.loads((out/'segments.json').read_text())
    assert j['truncated'] is True and j['analysed'][1] < 0.7 * j['declared_duration'] and t.end.max() <= j['analysed'][1] + 0.01
    assert j['notes'][0].startswith('TRUNCATED: the file declares')
    assert 'TRUNCATED' in stdout.splitlines()[0] and 'cmer: warning: TRUNCATED' in err
    assert 'TRUNCATED' in (out/'summary.txt').read_text().splitlines()[0]


def test_truncated_wav_and_avi_say_so(media, tmp_path, capsys):
    "Issue 19 item 5 in `cmer predict`: a wav whose data chunk declares more than it holds, and an AVI cut to 40 % (ffprobe gives the "
    "duration of what is left), are TRUNCATED as an mkv is (before: analysed as complete files, no note, no warning)."
    import soundfile as sf
    from cmer.predict import extract_audio
    full_s = len(extract_audio(media['clip'])) / 16000
    b = media['wav'].read_bytes(); wav = tmp_path/'cut.wav'; wav.write_bytes(b[:44 + (len(b) - 44) * 2 // 5])
    avi_full = tmp_path/'full.avi'
    subprocess.run(['ffmpeg', '-y', '-loglevel', 'error', '-i', str(media['clip']), '-c:v', 'mpeg4', '-c:a', 'pcm_s16le', str(avi_full)], check=True)
    b = avi_full.read_bytes(); avi = tmp_path/'cut.avi'; avi.write_bytes(b[:int(len(b) * 0.4)])
    for f in (wav, avi):
        out = tmp_path/f'{f.suffix[1:]}_out'
        rc, stdout, err = _cli(['predict', f, '--out', out, '--no-progress'], capsys)
        assert rc == 0, err
        j = json.loads((out/'segments.json').read_text())
        assert j['truncated'] is True and abs(j['declared_duration'] - full_s) < 0.3 and j['duration'] == j['declared_duration'], (f, j)
        assert j['analysed'][1] < 0.7 * j['declared_duration'], (f, j['analysed'])
        assert j['notes'][0].startswith(f"TRUNCATED: the file declares {j['declared_duration']:.1f} s"), j['notes']
        assert 'cmer: warning: TRUNCATED' in err and 'TRUNCATED' in (out/'summary.txt').read_text().splitlines()[0], err


def test_out_is_a_file_fails_before_any_work(media, tmp_path, capsys, monkeypatch):
    "--out naming an existing file: one error line at once (the input is not even probed), the file untouched."
    import cmer.predict
    def no_work(*a, **k): raise AssertionError('probe_media ran before --out was checked')
    monkeypatch.setattr(cmer.predict, 'probe_media', no_work)
    f = tmp_path/'results.txt'; f.write_text('mine')
    rc, _, err = _cli(['predict', media['wav'], '--out', f], capsys)
    assert rc == 1 and err.strip().splitlines() == [f'cmer: error: --out {f}: exists and is not a folder'], err
    assert f.read_text() == 'mine'


def test_out_on_another_filesystem(media, av_checkpoint, tmp_path):
    "--out a link to a folder on another filesystem (/dev/shm is a tmpfs): staged there, no cross-device rename, nothing left over."
    import os
    from cmer.predict import predict
    shm = Path('/dev/shm')
    if not (shm.is_dir() and os.access(shm, os.W_OK)) or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip('no writable /dev/shm on another filesystem than the temporary folder')
    import tempfile, shutil
    far = Path(tempfile.mkdtemp(dir=shm))
    try:
        link = tmp_path/'out'; link.symlink_to(far)
        predict(media['wav'], model=av_checkpoint, out=link, progress=False)
        assert sorted(p.name for p in far.iterdir()) == OUTPUTS
        assert sorted(p.name for p in tmp_path.iterdir()) == ['out']
    finally: shutil.rmtree(far)


@pytest.mark.parametrize('kind, message', [('text', "not a torch file (neither a zip archive nor a pickle; it starts with b'these ar')"),
                                           ('code', 'a pickle that needs arbitrary code to load (it names '),
                                           ('keys', "missing keys ['format', 'config', 'dims', 'classes', 'state_dict']")])
def test_model_not_a_checkpoint(media, tmp_path, capsys, kind, message):
    "--model given something else: one line, 'not a cmer checkpoint' and why; nothing written."
    import torch, argparse
    p = tmp_path/f'{kind}.pt'
    if kind == 'text': p.write_text('these are my notes\n' * 20)
    elif kind == 'code': torch.save({'args': argparse.Namespace(lr=0.1)}, p)
    else: torch.save({'weights': torch.zeros(3)}, p)
    rc, _, err = _cli(['predict', media['wav'], '--model', p, '--out', tmp_path/'o'], capsys)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and lines[0].startswith(f'cmer: error: --model {p}: not a cmer checkpoint: ') and message in lines[0], lines
    assert not (tmp_path/'o').exists()


def test_json_keys_are_the_same_for_every_model(media, av_checkpoint, tmp_path, capsys):
    "The default model (AVT, late fusion) and a chain checkpoint (AT): the same keys; --json prints segments.json's document (issue 19 item 11)."
    docs = []
    for extra in ([], ['--model', av_checkpoint]):
        out = tmp_path/f'o{len(docs)}'
        rc, stdout, err = _cli(['predict', media['wav'], '--out', out, '--no-progress', '--json', *extra], capsys)
        assert rc == 0, err
        doc = json.loads(stdout)
        assert doc == json.loads((out/'segments.json').read_text())
        docs.append(doc)
    a, b = docs
    assert list(a) == list(b) == SCHEMA_KEYS
    assert [list(x) for x in a['segments']] == [list(x) for x in b['segments']]
    assert a['modalities'] == ['audio', 'video', 'text'] and b['modalities'] == ['audio', 'text']      # what each model reads
    assert all(s['probabilities']['video'] is None for s in a['segments'] + b['segments'])           # an audio file: no face
    r = subprocess.run([CMER, 'predict', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and '"schema_version": 1' in r.stdout and '"probabilities"' in r.stdout and '--json' in r.stdout


@pytest.mark.parametrize('args, message', [(['--window', 'nan'], '--window nan: expected a finite number of seconds > 0'),
                                           (['--window', '0'], '--window 0.0: expected a finite number of seconds > 0'),
                                           (['--max-segment', 'inf'], '--max-segment inf: expected a finite number of seconds > 0'),
                                           (['--max-segment', 'long'], "--max-segment 'long': expected a finite number of seconds > 0")])
def test_seconds_are_checked_before_any_work(media, tmp_path, args, message):
    "Issue 19 item 2: `cmer predict --window nan` said `cannot convert float NaN to integer`; now one line naming the option, nothing written."
    r = subprocess.run([CMER, 'predict', str(media['wav']), '--out', str(tmp_path/'o'), *args], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == f'cmer: error: {message}', r.stderr
    assert not (tmp_path/'o').exists()


def test_paired_media_are_called_paired(tmp_path, capsys):
    "Issue 18 item 6: a file of a PAIRED corpus (real EmoDB speech) is PAIRED, never SYNTHETIC; a SYNTHETIC corpus's file stays SYNTHETIC."
    from cmer.core import get_config
    d = get_config().data_dir
    if not d or not (d/'emodb').is_dir() or not (d/'iemocap.csv').exists(): pytest.skip('no real data folder with EmoDB (CMER_DATA)')
    r = subprocess.run([CMER, 'demo-corpus', tmp_path/'paired', '--speech', 'emodb', '--max-per-speaker', '2', '--jobs', '1'],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    wav = sorted((tmp_path/'paired').rglob('*.wav'))[0]
    rc, stdout, err = _cli(['predict', wav, '--out', tmp_path/'o', '--no-progress'], capsys)
    assert rc == 0, err
    j = json.loads((tmp_path/'o'/'segments.json').read_text())
    assert (j['corpus_kind'], j['paired'], j['synthetic']) == ('paired', True, False), j
    assert j['notes'][0].startswith('PAIRED: the file belongs to a cmer PAIRED corpus: real speech (EmoDB)')
    text = stdout + (tmp_path/'o'/'summary.txt').read_text() + json.dumps(j)
    assert 'SYNTHETIC' not in text and 'espeak' not in text, text
    from cmer.demo import tiny_paths
    from cmer.predict import corpus_marker, is_synthetic
    tiny_wav = next(Path(tiny_paths()[0]).rglob('*.wav'))
    assert corpus_marker(tiny_wav)['kind'] == 'synthetic' and is_synthetic(tiny_wav) and not is_synthetic(wav)
