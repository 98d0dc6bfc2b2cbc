"""The fusion's per-subset behaviour on a toy problem (issue 11): a model trained on every modality predicts from each one alone,
an absent modality changes nothing, and an uninformative modality loses fusion weight without its removal hurting."""
import numpy as np, torch
import pytest
from dataclasses import replace
from cmer.core import seed_everything
from cmer.model import ModelConfig, UnifiedModel, toy_problem, train_steps, random_batch
from cmer.train import fit_gates

torch.set_num_threads(1)
DIMS = {'audio': 20, 'video': 16, 'text': 12}
SMALL = ModelConfig.deep(d_shared=32, audio_conv=16, rnn_hidden=16, video_proj=16, text_hidden=32, dropout=0.0, input_dropout=0.0,
                    w_gender=0.0, w_recon=0.0, w_xmodal=0.0, w_supcon=0.0, w_aug=0.0)

def _rows(b:dict, idx) -> dict:
    return {k: v[idx] for k, v in b.items()}

def _problem(noise_video:bool=False, seed:int=0, val:bool=False):
    "A toy problem of 128 utterances (noise 2: no single modality is perfect), split 64 train / 32 test (/ 32 validation); optionally video without any class signal."
    p = toy_problem(n=128, noise=2.0, seed=seed)
    if noise_video:
        g = torch.Generator().manual_seed(seed + 1)
        for b in (p['batch'], p['aug']): b['video'] = torch.randn(b['video'].shape, generator=g) * (b['video'] != 0)
    tr, te, va = torch.arange(64), torch.arange(64, 96), torch.arange(96, 128)
    train = dict(batch=_rows(p['batch'], tr), aug=_rows(p['aug'], tr), labels=p['labels'][tr], gender=p['gender'][tr])
    if val: return train, _rows(p['batch'], te), p['labels'][te], _rows(p['batch'], va), p['labels'][va]
    return train, _rows(p['batch'], te), p['labels'][te]

def _acc(model, batch, labels, use=None) -> float:
    model.eval()
    with torch.no_grad(): return float((model(batch, use=use)['emotion'].argmax(-1) == labels).float().mean())

def _use(B, mods):
    return torch.tensor([[m in mods for m in DIMS]] * B)

@pytest.fixture(scope='module')
def trained():
    train, test, y = _problem()
    seed_everything(0)
    model = UnifiedModel(DIMS, 4, SMALL)
    train_steps(model, train, steps=60, lr=3e-3)
    return model, test, y

def test_every_single_modality_predicts(trained):
    model, test, y = trained
    full = _acc(model, test, y)
    singles = {m: _acc(model, test, y, _use(len(y), [m])) for m in DIMS}
    assert full >= 0.75, full
    for m, a in singles.items(): assert a >= 0.5, (m, a, singles)          # chance is 0.25
    assert full >= max(singles.values()) - 0.05, (full, singles)

def test_absent_modality_changes_nothing(trained):
    model, test, y = trained
    model.eval()
    hide = _use(len(y), ['audio', 'video'])
    b = {k: v.clone() for k, v in test.items()}; b['text'] = b['text'] * 0 + 1e3; b['avail'] = hide   # garbage where text is absent
    no_text = {k: v for k, v in test.items() if k != 'text'}; no_text['avail'] = hide
    with torch.no_grad():
        a, c = model(b)['emotion'], model(no_text)['emotion']
        d = model(test, use=hide)['emotion']
    torch.testing.assert_close(a, c); torch.testing.assert_close(a, d)

def test_attention_fusion_still_available():
    seed_everything(0)
    m = UnifiedModel(DIMS, 4, replace(SMALL, fusion='attention', w_uni=0.0)).eval()
    assert not hasattr(m, 'late') and m(random_batch(3, DIMS))['emotion'].shape == (3, 4)

def test_uninformative_modality_loses_weight():
    "The fusion weights refit on held-out utterances (as `fit` does after training) give a modality without signal the least weight."
    train, test, y, val, yv = _problem(noise_video=True, seed=1, val=True)
    seed_everything(0)
    model = UnifiedModel(DIMS, 4, SMALL)
    train_steps(model, train, steps=60, lr=3e-3)
    model.eval()
    with torch.no_grad(): o = model(val)
    info = fit_gates(model, torch.log_softmax(o['uni'], -1), o['use'], yv)
    w = model.late.weights(None, torch.ones(1, 3, dtype=torch.bool))[0].detach()
    assert info['weights'] == [round(float(v), 4) for v in w]
    assert w[1] < 1 and w[1] < min(w[0], w[2]) - 0.2, w        # video (no signal) loses weight (all start at 1) and weighs least
    full, without = _acc(model, test, y), _acc(model, test, y, _use(len(y), ['audio', 'text']))
    assert without >= full - 0.05, (full, without)
    assert _acc(model, test, y, _use(len(y), ['video'])) < 0.5  # and alone it is near chance, as it should be


def test_uninformative_branch_calibrated_away():
    "The 'stats' recipe: each branch stacked on its own held-out predictions; a branch without signal gets the least weight, and leaving it out costs nothing."
    train, test, y, val, yv = _problem(noise_video=True, seed=1, val=True)
    seed_everything(0)
    model = UnifiedModel(DIMS, 4, ModelConfig(d_shared=32, w_gender=0.0, l2=0.01))
    train_steps(model, train, steps=200, lr=1e-2)
    model.eval()
    with torch.no_grad(): o = model(val)
    info = fit_gates(model, torch.log_softmax(o['uni'], -1), o['use'], yv, per_branch=True)
    w = info['weights']
    assert w[1] < min(w[0], w[2]) and info['bias'] == [0.0] * 4, info
    full, without = _acc(model, test, y), _acc(model, test, y, _use(len(y), ['audio', 'text']))
    assert without >= full - 0.05, (full, without)
    assert _acc(model, test, y, _use(len(y), ['video'])) < 0.5


def test_fusion_table_without_sessions(tmp_path):
    "A multimodal corpus without sessions (MELD, a CSV): the early-fusion baseline's inner split groups by speaker."
    from cmer.corpus import corpus_step
    from cmer.demo import tiny_paths
    from cmer.train import write_synthetic_features, load_data, TrainConfig
    from cmer.model import ModelConfig
    from cmer.evaluate import cross_validate
    from cmer.protocols import make_folds
    out = tmp_path/'out'
    corpus_step(tiny_paths()[0], out); write_synthetic_features(out, seed=3)
    d = load_data(out); d.table['session'] = np.nan
    small = ModelConfig(d_shared=32, audio_conv=16, rnn_hidden=16, video_proj=32, text_hidden=64, context=0)
    cv = cross_validate(d, make_folds(d.table, 'speaker')[:2], small, TrainConfig(epochs=3, min_epochs=2, batch_size=8, patience=2),
                        progress=False, unimodal=True)
    assert sorted(cv['fusion']['unimodal']) == ['A', 'T', 'V'] and 0 <= cv['fusion']['early_fusion'] <= 1
