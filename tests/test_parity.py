"""Chain/predict parity (issue 12): an utterance's features from the chain's steps equal those `cmer predict` computes
for the same span of the same file, with the featurizers a checkpoint records. On the tiny SYNTHETIC demo corpus."""
import numpy as np
import pytest


@pytest.fixture(scope='module')
def chain(tiny_corpus):
    "The feature steps on the tiny demo corpus (its shared output root: a no-op when the notebooks already ran them)."
    from cmer.demo import tiny_paths
    from cmer.corpus import corpus_step, load_utterances
    from cmer.text_aug import text_aug_step
    from cmer.frames import frames_step
    from cmer.frame_embed import frame_embed_step
    from cmer.mfcc import mfcc_step
    from cmer.text_embed import text_embed_step
    corpus, out = tiny_paths()
    corpus_step(corpus, out)
    text_aug_step(corpus, out)
    for step in (frames_step, frame_embed_step, mfcc_step, text_embed_step): step(corpus, out)
    return out, load_utterances(out)


@pytest.fixture(scope='module')
def checkpoint(chain, tmp_path_factory):
    "A checkpoint of the chain's features as `cmer.evaluate` writes it (an untrained model: parity is about the features)."
    import torch
    from cmer.train import load_data
    from cmer.evaluate import featurizer_record
    from cmer.model import UnifiedModel, save_checkpoint
    out, _ = chain
    data = load_data(out, 'AVT', audio='mfcc')
    torch.manual_seed(0)
    net = UnifiedModel({m: int(data.feats[m].dim[0]) for m in data.modalities}, len(data.classes)).eval()
    rec = featurizer_record(data)
    assert set(rec) == {'audio', 'video', 'text'}, rec
    return save_checkpoint(tmp_path_factory.mktemp('ckpt')/'model.pt', net, list(data.classes), meta=dict(featurizers=rec, synthetic=True))


def test_checkpoint_records_the_chain_featurizers(chain, checkpoint):
    from cmer.predict import load_predictor
    from cmer.core import load_manifest
    out, _ = chain
    pred = load_predictor(checkpoint)
    fr = load_manifest(out, 'frames')['params']
    a = pred.featurizers['audio'].settings
    m = load_manifest(out, 'mfcc')['params']
    assert (a.kind, a.n_mfcc, a.win_ms, a.hop_ms, a.n_mels) == ('mfcc', m['n_mfcc'], m['win_ms'], m['hop_ms'], m['n_mels'])
    v = pred.featurizers['video']
    assert (v.frame_settings.fps, v.frame_settings.max_frames, v.frame_settings.side, v.frame_settings.crop_size) == \
           (fr['fps'], fr['max_frames'], fr['side'], fr['crop_size'])
    assert pred.featurizers['text'].settings.model == load_manifest(out, 'text_embed')['params']['model']
    t = pred.featurizers['text']
    assert t.settings.lexical == load_manifest(out, 'text_embed')['report']['lexical']['dim'] > 0   # the lexical view, its map inside the checkpoint
    assert t.lexical_ref is None and t.lexical_map.dim == t.settings.lexical


def test_predict_features_equal_the_chain_features(chain, checkpoint):
    "For utterances of every dialog: MFCC of the utterance's wav, face-frame embeddings of its span of the dialog video, sentence embedding of its transcript."
    from cmer.core import load_features, features_dir
    from cmer.predict import load_predictor, extract_audio, segment_faces, segment_features
    from cmer.media import SR
    out, tab = chain
    pred = load_predictor(checkpoint)
    stored = {m: load_features(features_dir(out)/f'{n}.npz') for m, n in (('audio', 'mfcc'), ('video', 'frames'), ('text', 'text'))}
    rows = tab.groupby('dialog', sort=True).head(2)
    n_video = 0
    for r in rows.itertuples():
        y = extract_audio(r.wav)                                                 # the utterance's own file, whole
        faces = segment_faces(r.video, [(r.start, r.end)], pred.featurizers['video'], genders=[r.gender])   # its span of the dialog video
        feats, _, _ = segment_features(pred, y, [(0.0, len(y) / SR)], faces, transcripts=[r.transcript])
        f = feats[0]
        np.testing.assert_array_equal(f['audio'], stored['audio'][r.utt_id], err_msg=f'{r.utt_id} audio')
        np.testing.assert_allclose(f['text'], stored['text'][r.utt_id], atol=1e-6, err_msg=f'{r.utt_id} text')
        if f['video'] is not None:                                               # predict keeps only segments with a detected face
            np.testing.assert_allclose(f['video'], stored['video'][r.utt_id], atol=1e-5, err_msg=f'{r.utt_id} video')
            n_video += 1
    assert n_video >= len(rows) // 2, f'only {n_video} of {len(rows)} utterances had a face'


def test_changed_settings_are_noticed(chain, checkpoint):
    "The parity is not vacuous: other frame or MFCC settings than the checkpoint's give other features."
    from cmer.predict import load_predictor, extract_audio
    from cmer.mfcc import AudioFeaturizer
    from cmer.core import load_features, features_dir
    out, tab = chain
    r = tab.iloc[0]
    y = extract_audio(r.wav)
    other = AudioFeaturizer(n_mfcc=13).transform([y])[0]
    assert other.shape[1] == 13 != load_features(features_dir(out)/'mfcc.npz')[r.utt_id].shape[1]
    pred = load_predictor(checkpoint)
    np.testing.assert_array_equal(pred.featurizers['audio'].transform([y])[0], load_features(features_dir(out)/'mfcc.npz')[r.utt_id])


def test_whisper_features_parity(chain, tmp_path):
    "A chain with Whisper encoder features: the featurizer its feature file records (as a checkpoint would) gives predict the same frames."
    import shutil
    from cmer.core import step_dir, load_features, features_dir
    from cmer.mfcc import mfcc_step, AudioFeaturizer
    from cmer.predict import featurizers_from_meta, extract_audio
    from cmer.demo import tiny_paths
    out, tab = chain
    wout = tmp_path/'out'
    shutil.copytree(step_dir(out, 'corpus'), step_dir(wout, 'corpus'))
    mfcc_step(tiny_paths()[0], wout, audio_features='whisper')
    wf = load_features(features_dir(wout)/'whisper.npz')
    fz = featurizers_from_meta(dict(featurizers={'audio': wf.meta['featurizer']}), ('audio',), device='cpu')['audio']
    assert isinstance(fz, AudioFeaturizer) and fz.settings.kind == 'whisper' and fz.name == 'whisper'
    for r in tab.head(4).itertuples():
        np.testing.assert_allclose(fz.transform([extract_audio(r.wav)])[0], wf[r.utt_id], atol=1e-5, err_msg=r.utt_id)
