"Dialogue context wired into training and prediction (issue 13 item 3): `ModelConfig.context`, `cmer.train.fit/predict`, checkpoints, `cmer predict`."
from dataclasses import replace
import numpy as np, pandas as pd, pytest, torch
from cmer.model import ModelConfig, UnifiedModel, save_checkpoint, load_checkpoint
from cmer.train import (TrainConfig, synthetic_features, make_data, fit, predict, context_rows, validation_split, CorpusData)
from cmer.context import REL_SAME, REL_OTHER, REL_UNKNOWN

torch.set_num_threads(1)
CLASSES = ['neu', 'ang', 'sad', 'hap']
SMALL = ModelConfig(d_shared=16, audio_conv=8, rnn_hidden=8, text_hidden=32, audio_layers=1, audio_stride=1, context=0)
FAST = TrainConfig(epochs=3, batch_size=8, min_epochs=1, patience=2)


def toy_dialogs(n_dialogs:int=8, turns:int=6, seed:int=0) -> CorpusData:
    "Dialogs of two alternating speakers (SYNTHETIC features, audio + text); rows deliberately not in dialog order."
    rng = np.random.default_rng(seed)
    rows = [dict(utt_id=f'd{d}_u{t}', session=d % 4 + 1, dialog=f'd{d}', speaker=f's{d % 4}{"FM"[t % 2]}', gender='FM'[t % 2],
                 position=t, label_id=int(rng.integers(4))) for d in range(n_dialogs) for t in range(turns)]
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    table['label'] = [CLASSES[i] for i in table.label_id]
    feats = synthetic_features(table, 'AT', dims={'audio': 6, 'text': 10}, frames=(4, 9), seed=seed)
    return make_data(table, feats, CLASSES)


def with_text(data:CorpusData, row:int, value:float) -> CorpusData:
    "A copy of `data` whose utterance `row` has other text features."
    f = data.feats['text']; x = f.data.copy(); x[data.rows['text'][row]] = value
    return CorpusData(data.table, data.classes, {**data.feats, 'text': replace(f, data=x)}, data.aug, data.rows, data.aug_rows, data.provenance)


@pytest.fixture(scope='module')
def trained():
    data = toy_dialogs()
    trn = np.flatnonzero(data.table.session != 4)
    tr, va = validation_split(data.table, trn)
    return data, tr, va, fit(data, tr, va, replace(SMALL, context=3), FAST, progress=False)


def row_of(data, dialog, pos):
    return int(np.flatnonzero((data.table.dialog == dialog) & (data.table.position == pos))[0])


def test_no_future_leak(trained):
    data, tr, va, res = trained
    assert res.model.context_head is not None and res.model.cfg.context == 3
    allr = np.arange(len(data))
    p = predict(res.model, data, allr)
    assert (p['pred'] >= 0).all()
    later = row_of(data, 'd0', 4)
    q = predict(res.model, with_text(data, later, 5.0), allr)
    earlier = [row_of(data, 'd0', t) for t in range(4)]
    np.testing.assert_array_equal(q['prob'][earlier], p['prob'][earlier])            # the past does not see the future
    assert not np.allclose(q['prob'][row_of(data, 'd0', 5)], p['prob'][row_of(data, 'd0', 5)])   # the next utterance reads it
    assert not np.allclose(q['prob'][later], p['prob'][later])
    other = np.flatnonzero(data.table.dialog != 'd0')
    np.testing.assert_array_equal(q['prob'][other], p['prob'][other])                # other dialogs: untouched


def test_batching_does_not_matter(trained):
    data, tr, va, res = trained
    allr = np.arange(len(data))
    a, b = predict(res.model, data, allr), predict(res.model, data, allr[::-1], batch_size=5)
    np.testing.assert_allclose(b['prob'][::-1], a['prob'], atol=1e-5)
    one = predict(res.model, data, allr[7:8])          # alone: its context rows still come from the table
    np.testing.assert_allclose(one['prob'][0], a['prob'][7], atol=1e-5)
    # per-modality predictions (TrainConfig.select='branch') run through the context path too
    t = predict(res.model, data, allr, modalities='T')
    assert (t['pred'] >= 0).all() and t['use'][:, 0].sum() == 0


def test_bidirectional_sees_the_future():
    data = toy_dialogs(n_dialogs=4)
    m = UnifiedModel(data.dims, 4, replace(SMALL, context=2, context_bidirectional=True, context_mode='mean')).eval()   # untrained: the linear head would add nothing yet
    allr = np.arange(len(data))
    p = predict(m, data, allr); later = row_of(data, 'd0', 4)
    q = predict(m, with_text(data, later, 5.0), allr)
    assert not np.allclose(q['prob'][row_of(data, 'd0', 3)], p['prob'][row_of(data, 'd0', 3)])


def test_training_context_is_training_rows_only(trained):
    data, tr, va, res = trained
    idx, rel = context_rows(data.table, 3, pool=tr)
    used = idx[idx >= 0]
    assert np.isin(used, tr).all() and (idx[np.setdiff1d(np.arange(len(data)), tr)] == -1).all()
    assert set(np.unique(rel[tr][idx[tr] >= 0])) <= {REL_SAME, REL_OTHER}
    # each training row's context is the previous training rows of its dialog, nearest first
    r = row_of(data, 'd0', 3)
    if r in tr:
        prev = [row_of(data, 'd0', t) for t in (2, 1, 0) if row_of(data, 'd0', t) in tr]
        assert idx[r][:len(prev)].tolist() == prev


def test_context_zero_unchanged():
    data = toy_dialogs(n_dialogs=4)
    torch.manual_seed(0); m0 = UnifiedModel(data.dims, 4, SMALL)
    torch.manual_seed(0); m3 = UnifiedModel(data.dims, 4, replace(SMALL, context=3))
    assert m0.context_head is None and not any(k.startswith('context_head') for k in m0.state_dict())
    sd3 = m3.state_dict()
    for k, v in m0.state_dict().items(): assert torch.equal(v, sd3[k]), k      # the context head is made last: same other weights
    with pytest.raises(ValueError, match='no context head'): m0.forward_context({}, np.zeros((1, 1)), np.zeros((1, 1)), [0])
    with pytest.raises(ValueError, match='context'): ModelConfig(context=-1)
    with pytest.raises(ValueError, match='context_mode'): ModelConfig(context_mode='lstm')
    # a context=0 fit is the same with device='cpu' as with the default (no GPU here, or 'auto' resolves to it)
    tr = np.flatnonzero(data.table.session != 4)
    a = fit(data, tr, None, SMALL, replace(FAST, epochs=1, device='cpu'), progress=False)
    b = fit(data, tr, None, SMALL, replace(FAST, epochs=1), progress=False)
    if next(b.model.parameters()).device.type == 'cpu':
        np.testing.assert_array_equal(predict(a.model, data, tr)['prob'], predict(b.model, data, tr)['prob'])


def test_checkpoint_round_trip(trained, tmp_path):
    data, tr, va, res = trained
    save_checkpoint(tmp_path/'c.pt', res.model, CLASSES)
    m, info = load_checkpoint(tmp_path/'c.pt')
    assert m.cfg == res.model.cfg and info['config']['context'] == 3 and info['config']['context_mode'] == 'linear'
    assert any(k.startswith('context_head.') for k in torch.load(tmp_path/'c.pt', weights_only=True)['state_dict'])
    allr = np.arange(len(data))
    np.testing.assert_array_equal(predict(m, data, allr)['prob'], predict(res.model, data, allr)['prob'])
    # a checkpoint written before context existed loads with context 0
    m0 = UnifiedModel(data.dims, 4, SMALL).eval(); save_checkpoint(tmp_path/'o.pt', m0, CLASSES)
    old = torch.load(tmp_path/'o.pt', weights_only=True)
    for k in ('context', 'context_mode', 'context_bidirectional'): old['config'].pop(k)
    torch.save(old, tmp_path/'old.pt')
    m1, _ = load_checkpoint(tmp_path/'old.pt')
    assert m1.cfg.context == 0 and m1.context_head is None
    np.testing.assert_array_equal(predict(m1, data, allr)['prob'], predict(m0, data, allr)['prob'])


def test_cmer_predict_context(trained):
    "`cmer predict` with a context checkpoint: segments in time order, one dialog, unknown speakers, past only."
    from cmer.predict import unified_probs, segment_context
    data, tr, va, res = trained
    idx, rel = segment_context(np.array([0, 2, 5]), 2)
    assert idx.tolist() == [[-1, -1], [0, -1], [1, 0]] and (rel[idx >= 0] == REL_UNKNOWN).all()
    rng = np.random.default_rng(0)
    feats = [dict(audio=rng.normal(size=(6, 6)).astype(np.float32), text=rng.normal(size=10).astype(np.float32)) for _ in range(5)]
    feats[1] = dict(audio=None, text=feats[1]['text'])
    p = unified_probs(res.model, feats)
    changed = [dict(f) for f in feats]; changed[3] = dict(audio=feats[3]['audio'] + 3, text=feats[3]['text'] - 2)
    q = unified_probs(res.model, changed)
    np.testing.assert_array_equal(q[:3], p[:3])                  # earlier segments: unchanged
    assert not np.allclose(q[4], p[4])                           # the next one reads segment 3 as context
    alone = np.stack([unified_probs(res.model, [f])[0] for f in feats])
    assert not np.allclose(alone[1:], p[1:])                     # the context path ran
    np.testing.assert_allclose(alone[0], p[0], atol=1e-6)        # the first segment has no context either way
    t = unified_probs(res.model, feats, ('text',))               # one modality: the segments that have it, in order
    assert not np.isnan(t).any()


def test_default_context_and_no_dialog_column():
    "The default reads 16 previous utterances; a table without a `dialog` column trains and predicts every utterance alone."
    assert ModelConfig().context == 16 and not ModelConfig().context_bidirectional
    data = toy_dialogs(n_dialogs=4)
    nd = CorpusData(data.table.drop(columns=['dialog']), data.classes, data.feats, data.aug, data.rows, data.aug_rows, data.provenance)
    tr = np.flatnonzero(nd.table.session != 4)
    res = fit(nd, tr, None, replace(SMALL, context=16), replace(FAST, epochs=1), progress=False)
    allr = np.arange(len(nd))
    p, q = predict(res.model, nd, allr), predict(res.model, with_text(nd, 0, 5.0), allr)
    np.testing.assert_array_equal(q['prob'][1:], p['prob'][1:])     # nobody reads utterance 0 as context


def test_context_batches_cover_training_once():
    "A context model's batches: every training utterance once per epoch, in runs of consecutive utterances of a dialog."
    from cmer.train import context_batches
    data = toy_dialogs()
    tr = np.flatnonzero(data.table.session != 4)
    bs = context_batches(data.table, tr, 8, np.random.default_rng(0), run=3)
    flat = np.concatenate(bs)
    np.testing.assert_array_equal(np.sort(flat), np.sort(tr))
    t = data.table
    for seed in range(5):  # runs never cross a dialog: split the epoch's order where the dialog changes, each piece is consecutive turns
        flat_s = np.concatenate(context_batches(data.table, tr, 8, np.random.default_rng(seed), run=3))
        d, pos = t.dialog.to_numpy()[flat_s], t.position.to_numpy()[flat_s]
        cuts = np.flatnonzero((d[1:] != d[:-1]) | (np.diff(pos) != 1)) + 1
        pieces = np.split(np.arange(len(flat_s)), cuts)
        assert all(len(q) <= 6 for q in pieces)    # at most two runs of one dialog happen to follow each other in order
        assert max(len(q) for q in pieces) >= 3
    assert not np.array_equal(flat, np.concatenate(context_batches(data.table, tr, 8, np.random.default_rng(1), run=3)))


def test_fit_gates_when_held_out_classes_are_absent_from_training():
    "A validation set whose labels all have class weight 0 (absent from training, e.g. a tiny MELD split) refits finite weights, not NaN."
    from cmer.train import fit_gates
    m = UnifiedModel({'audio': 6, 'text': 10}, 4, SMALL)
    lp = torch.log_softmax(torch.randn(5, 2, 4), -1); use = torch.ones(5, 2, dtype=torch.bool)
    info = fit_gates(m, lp, use, torch.tensor([3, 3, 3, 3, 3]), torch.tensor([1., 1., 1., 0.]), steps=20)
    assert np.isfinite(info['weights']).all() and np.isfinite(info['bias']).all()
