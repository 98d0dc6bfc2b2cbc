"""Whisper encoder features (cmer.mfcc): shapes, packing never across dialogs, packed against one-per-window, determinism.

Real speech where the data folder has it (EmoDB clips, ../shared/data), otherwise the tiny demo corpus' SYNTHETIC speech.
The 'trim' window keeps these tests fast; one 'full' (30 s) window checks Whisper's own input; 'melpad' and 'fixed' (issue 18 item 3)
round-trip through a checkpoint's description; step 04's default 'auto' writes Whisper and MFCC features when the model is at hand."""
from pathlib import Path
import numpy as np, pytest

from cmer.core import get_config, MissingResourceError
from cmer.mfcc import (WhisperEncoder, whisper_features, pack_windows, frame_cosine, whisper_files, WHISPER_HOP, WHISPER_WINDOW)
from cmer.media import read_audio


@pytest.fixture(scope='module')
def enc():
    return WhisperEncoder(threads=2, window='trim')


@pytest.fixture(scope='module')
def clips(tiny_corpus):
    "Six (path, dialog) pairs: two EmoDB speakers x three clips (real speech) if the data folder has EmoDB, else the tiny corpus."
    d = get_config().data_dir
    if d and (Path(d)/'emodb'/'labels.csv').exists():
        from cmer.corpus import read_emodb
        df = read_emodb(Path(d)/'emodb')
        df = df[df.speaker.isin(['03', '08'])].groupby('speaker').head(3)
        return list(zip(df.wav, df.speaker))
    from cmer.demo import tiny_paths
    from cmer.corpus import corpus_step, load_utterances
    c, o = tiny_paths(); corpus_step(c, o); u = load_utterances(o)
    u = u[u.dialog.isin(u.dialog.unique()[:2])].groupby('dialog').head(3)
    return list(zip(u.wav, u.dialog))


@pytest.fixture(scope='module')
def signals(clips):
    return [read_audio(p)[0] for p, _ in clips], [g for _, g in clips]


def test_shapes(enc, signals):
    ys, _ = signals
    feats, n = whisper_features(enc, ys)
    assert n == len(ys)
    for y, f in zip(ys, feats):
        assert f.shape == (len(y) // WHISPER_HOP, 512) and f.dtype == np.float32 and np.isfinite(f).all()
    long = np.concatenate([ys[0]] * (WHISPER_WINDOW // len(ys[0]) + 2))       # longer than one window: chunked
    (fl,), nl = whisper_features(enc, [long])
    assert nl == 2 and fl.shape == (len(long) // WHISPER_HOP, 512)


def test_full_window(signals):
    ys, _ = signals
    full = WhisperEncoder(threads=2)
    assert full.compute_type == 'int8' and full.mel(ys[0]).shape == (80, 3000)
    (f,), n = whisper_features(full, ys[:1])
    assert n == 1 and f.shape == (len(ys[0]) // WHISPER_HOP, 512)


def test_packing_never_across_dialogs():
    rng = np.random.default_rng(1)
    for _ in range(100):
        L = rng.integers(1, 3 * WHISPER_WINDOW // 4, 40).tolist(); D = rng.choice(list('abcde'), 40).tolist()
        plan = pack_windows(L, D)
        assert sorted(i for w in plan for i, _ in w) == list(range(40))
        for w in plan:
            assert len({D[i] for i, _ in w}) == 1
            assert len(w) == 1 or max(s + L[i] for i, s in w) <= WHISPER_WINDOW
            assert all(s % WHISPER_HOP == 0 for _, s in w)
            assert [i for i, _ in w] == sorted(i for i, _ in w)                   # the dialog's order is kept


def test_packed_vs_single(enc, signals):
    ys, dl = signals
    single, n1 = whisper_features(enc, ys)
    packed, n2 = whisper_features(enc, ys, dialogs=dl, pack=True)
    assert n2 == len(set(dl)) < n1                                            # one window per dialog here: fewer passes
    cos = [frame_cosine(a, b) for a, b in zip(single, packed)]
    assert all(a.shape == b.shape for a, b in zip(single, packed))
    assert min(cos) > 0.3 and max(cos) < 0.9999, cos                        # similar, not the same numbers
    # a packed utterance's features depend only on its own dialog: add another dialog's clips, nothing changes
    other = [y[::-1].copy() for y in ys]
    mixed, _ = whisper_features(enc, ys + other, dialogs=dl + [f'other-{g}' for g in dl], pack=True)
    for a, b in zip(packed, mixed[:len(ys)]): np.testing.assert_array_equal(a, b)


def test_deterministic(enc, signals):
    ys, dl = signals
    a, _ = whisper_features(enc, ys, dialogs=dl, pack=True)
    b, _ = whisper_features(WhisperEncoder(threads=1, window='trim'), ys, dialogs=dl, pack=True)
    for x, y in zip(a, b): np.testing.assert_allclose(x, y, atol=1e-4)


def test_files_and_errors(enc, clips, signals, tmp_path):
    ys, dl = signals
    items = [(f'u{i}', p, g) for i, (p, g) in enumerate(clips)] + [('missing', str(tmp_path/'nope.wav'), 'x')]
    fs, fails, _, n = whisper_files(items, enc, pack=True)
    assert list(fs.ids) == [f'u{i}' for i in range(len(clips))] and fs.dim == (512,)
    assert [f['item'] for f in fails] == ['missing'] and 'no such audio file' in fails[0]['error']
    with pytest.raises(MissingResourceError, match='model.bin'): WhisperEncoder(tmp_path)
    with pytest.raises(ValueError, match='packing needs'): whisper_features(enc, ys, pack=True)


@pytest.mark.parametrize('window', ['melpad', 'fixed'])
def test_new_windows_shapes_and_round_trip(signals, window):
    "'melpad': the clip's own log-mel padded with zeros to 30 s; 'fixed': the signal padded or centre-cut to whisper_fixed_s; both keep the clip's own frames."
    from cmer.mfcc import AudioFeaturizer
    ys, _ = signals
    fz = AudioFeaturizer(kind='whisper', whisper_window=window, whisper_fixed_s=1.5)
    feats = fz.transform(ys[:3])
    want = [min(len(y), 24000) // WHISPER_HOP if window == 'fixed' else len(y) // WHISPER_HOP for y in ys[:3]]
    assert [f.shape for f in feats] == [(n, 512) for n in want]
    back = AudioFeaturizer.from_description(fz.describe())                     # what cmer predict rebuilds from a checkpoint
    assert back.settings == fz.settings and (back.encoder.window, back.encoder.fixed_s) == (window, 1.5)
    for a, b in zip(back.transform(ys[:3]), feats): np.testing.assert_array_equal(a, b)
    trim = AudioFeaturizer(kind='whisper').transform(ys[:1])[0]
    assert frame_cosine(feats[0][:len(trim)], trim[:len(feats[0])]) < 0.9999                # another window: other numbers


def test_step_default_audio_features_is_auto(tiny_corpus, tmp_path):
    "Step 04's default writes Whisper and MFCC features when the Whisper model is at hand, MFCC alone without it, and the report says why."
    import shutil
    from cmer.demo import tiny_paths
    from cmer.corpus import corpus_step
    from cmer.core import step_dir, features_dir, load_manifest
    from cmer.mfcc import mfcc_step
    c, o = tiny_paths(); corpus_step(c, o)
    for name, kw, files in [('with', {}, ['mfcc.npz', 'whisper.npz']), ('without', dict(whisper_model=str(tmp_path/'no-model')), ['mfcc.npz'])]:
        out = tmp_path/name
        shutil.copytree(step_dir(o, 'corpus'), step_dir(out, 'corpus'))
        r = mfcc_step(c, out, **kw)['report']
        assert sorted(p.name for p in features_dir(out).iterdir()) == files, name
        assert r['audio_features'] == ('both' if name == 'with' else 'mfcc') and r['audio_features_asked'] == 'auto'
        assert r['audio_features_why'].startswith('auto: ') and (name == 'with' or 'no-model' in r['audio_features_why'])
