"""MELD's clips as audio and video (issue 20 item 4): in a corpus of MELD's release layout with real mp4 clips (generated:
espeak-ng speech, one or two faces), step 04 reads each clip's audio track (extracted once, 16 kHz mono, under the output
folder) and steps 05-06 take the active speaker's face, through `cmer run`."""
import json, subprocess
import numpy as np
from conftest import CMER


def manifest(out, step): return json.loads((out/step/'manifest.json').read_text())


def test_meld_clips_through_the_audio_and_video_steps(tmp_path):
    from cmer.demo import write_meld_clips
    from cmer.core import load_features, features_dir
    from cmer.corpus import read_meld
    from cmer.frames import load_frames
    meld, out = write_meld_clips(tmp_path/'MELD.Raw', n_jobs=2), tmp_path/'out'
    r = subprocess.run([CMER, 'run', '--corpus', meld, '--out', out, '--steps', 'corpus', 'mfcc', 'frames', 'frame_embed', '--checks', 'never',
                        '-p', 'audio_features=mfcc'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    df = read_meld(meld)[0]
    with_clip = df.utt_id[df.video != ''].tolist()
    assert len(with_clip) == 9 and manifest(out, 'corpus')['report']['with_video'] == 9
    # audio: every clip's track, extracted once under the output folder; the utterance without a clip is a named failure
    m = manifest(out, 'mfcc')
    assert m['report']['clips_with_audio_extracted'] == 9 and 'skipped' not in m['report']
    mf = load_features(features_dir(out)/'mfcc.npz')
    assert sorted(mf.ids) == sorted(with_clip) and mf.dim == (20,) and (mf.lengths > 50).all()       # > 0.5 s of speech each
    assert len(list((out/'clip_audio').glob('*.wav'))) == 9
    assert [f['item'] for f in m['failures']] == ['test_dia3_utt0 (mfcc)']
    # video: the whole clip, the active speaker's face (the speaker sits left when female, right when male; every other clip shows two faces)
    fs = load_frames(out)
    assert sorted(fs.ids) == sorted(with_clip)
    right = 0
    for i, u in enumerate(df.utt_id):
        if u not in fs: continue
        f = fs[u]
        assert f['face'].any(), u
        cx = np.median(f['box'][f['face'], 0] + f['box'][f['face'], 2] / 2)
        right += (cx < 240) == ('FM'[i % 2] == 'F')
    assert right >= 8, right
    assert manifest(out, 'frames')['params']['side'] == 'speaker'                # MELD's clips: 'speaker' takes the active face
    ff = load_features(features_dir(out)/'frames.npz')
    assert sorted(ff.ids) == sorted(with_clip) and ff.dim == (256,)
