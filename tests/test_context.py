"Dialogue context (cmer.context): order on the real IEMOCAP dialogue order, speaker relations, no future leak across several dialogues, learning from context."
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cmer.context import (context_index, context_mean, gather_context, ContextHead, ContextModel, unified_embed,
                          REL_PAD, REL_SAME, REL_OTHER, REL_UNKNOWN)

ORDER = Path(__file__).resolve().parents[2]/'shared'/'data'/'iemocap_order.csv'


def dialogs(n_dialogs=3, n=7, seed=0):
    "A shuffled table of `n_dialogs` dialogues of `n` turns with gaps in the positions, two speakers each."
    rng = np.random.default_rng(seed)
    rows = [dict(dialog=f'd{d}', speaker=f'd{d}_{"AB"[rng.integers(2)]}', position=int(p))
            for d in range(n_dialogs) for p in np.sort(rng.choice(3 * n, n, replace=False))]
    return pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)


def check_index(tab, k, idx, rel):
    "Every context slot: same dialog, earlier position, nearest first, the right count, the right relation."
    pos, dlg, spk = tab.position.to_numpy(), tab.dialog.to_numpy(), tab.speaker.to_numpy()
    for i in range(len(tab)):
        earlier = np.flatnonzero((dlg == dlg[i]) & (pos < pos[i]))
        want = earlier[np.argsort(-pos[earlier])][:k]
        got = idx[i][idx[i] >= 0]
        assert got.tolist() == want.tolist(), (i, got, want)
        assert (idx[i][len(want):] == -1).all() and (rel[i][len(want):] == REL_PAD).all()
        assert rel[i][:len(want)].tolist() == [REL_SAME if spk[j] == spk[i] else REL_OTHER for j in want]


def test_order_and_relations_on_shuffled_dialogs():
    tab = dialogs()
    for k in (1, 3, 10):
        check_index(tab, k, *context_index(tab, k))


@pytest.mark.skipif(not ORDER.exists(), reason='real data folder absent')
def test_order_on_real_iemocap_dialogues():
    "real (IEMOCAP dialogue order): 5,531 utterances, 151 dialogues."
    o = pd.read_csv(ORDER)
    tab = pd.DataFrame(dict(dialog=o.dialog, position=o.position, speaker=o.dialog.str[:5] + o.FileName.str.rsplit('_', n=1).str[1].str[0]))
    tab = tab.sample(frac=1, random_state=1).reset_index(drop=True)
    idx, rel = context_index(tab, 4)
    pos, dlg = tab.position.to_numpy(), tab.dialog.to_numpy()
    valid = idx >= 0
    r, c = np.nonzero(valid)
    assert (dlg[idx[r, c]] == dlg[r]).all() and (pos[idx[r, c]] < pos[r]).all()
    assert (np.diff(np.where(valid, pos[np.maximum(idx, 0)], -1), axis=1)[valid[:, 1:]] < 0).all()   # nearest first
    assert ((rel == REL_SAME) | (rel == REL_OTHER))[valid].all()
    first = tab.groupby('dialog').position.transform('min').to_numpy() == pos
    assert (~valid[first]).all() and valid[~first, 0].all()          # only each dialogue's first turn has no context
    assert 0.3 < (rel[valid] == REL_SAME).mean() < 0.7                # both relations occur


def test_unknown_speakers_and_bidirectional():
    tab = dialogs().drop(columns='speaker')
    idx, rel = context_index(tab, 2, bidirectional=True)
    assert idx.shape == (len(tab), 4)
    assert set(np.unique(rel)) == {REL_PAD, REL_UNKNOWN}
    pos, dlg = tab.position.to_numpy(), tab.dialog.to_numpy()
    fut = idx[:, 2:]; r, c = np.nonzero(fut >= 0)
    assert (dlg[fut[r, c]] == dlg[r]).all() and (pos[fut[r, c]] > pos[r]).all()


class Embed(nn.Module):
    "A per-utterance MLP: batch {'x': (B, D)} -> (B, d)."
    def __init__(self, D=6, d=12):
        super().__init__(); self.net = nn.Sequential(nn.Linear(D, d), nn.GELU(), nn.Linear(d, d))
    def forward(self, b): return self.net(b['x'])


@pytest.mark.parametrize('mode', ['attn', 'gru', 'mean'])
def test_no_future_leak_across_dialogs(mode):
    "Changing any utterance changes no prediction of an earlier utterance of its dialogue nor of another dialogue (exactly)."
    tab = dialogs(seed=2)
    torch.manual_seed(0)
    cm = ContextModel(Embed(), 12, 4, k=3, mode=mode).eval()
    idx, rel = context_index(tab, 3)
    x = torch.randn(len(tab), 6)
    with torch.no_grad(): p = cm({'x': x}, idx, rel)['emotion']
    pos, dlg = tab.position.to_numpy(), tab.dialog.to_numpy()
    for j in range(len(tab)):
        x2 = x.clone(); x2[j] = torch.randn(6) * 5
        with torch.no_grad(): q = cm({'x': x2}, idx, rel)['emotion']
        unaffected = (dlg != dlg[j]) | (pos < pos[j])
        assert torch.equal(q[unaffected], p[unaffected])
        assert not torch.equal(q[j], p[j])
    cmb = ContextModel(Embed(), 12, 4, k=3, mode=mode, bidirectional=True).eval()
    ib, rb = context_index(tab, 3, bidirectional=True)
    j = int(np.flatnonzero(pos == tab[dlg == dlg[0]].position.max())[0])     # a dialogue's last turn ...
    x2 = x.clone(); x2[j] += 5
    with torch.no_grad(): pb, qb = cmb({'x': x}, ib, rb)['emotion'], cmb({'x': x2}, ib, rb)['emotion']
    prev = ib[j, 0]
    assert not torch.allclose(pb[prev], qb[prev])                                 # ... changes its predecessor offline


def test_gather_context_matches_whole_table():
    tab = dialogs(seed=3)
    torch.manual_seed(0)
    cm = ContextModel(Embed(), 12, 4, k=2).eval()
    idx, rel = context_index(tab, 2)
    x = torch.randn(len(tab), 6)
    with torch.no_grad():
        full = cm({'x': x}, idx, rel)['emotion']
        rows = np.array([5, 0, 17])
        need, loc, rr, pos = gather_context(rows, idx, rel)
        part = cm({'x': x[need]}, loc, rr, torch.as_tensor(pos))['emotion']
    torch.testing.assert_close(part, full[rows])


def test_context_is_learned():
    "A task only context can solve: the label is carried by the previous utterance; k=1 learns it, k=0 cannot."
    rng = np.random.default_rng(0)
    n_d, n = 60, 8
    tab = pd.DataFrame(dict(dialog=np.repeat(np.arange(n_d), n), position=np.tile(np.arange(n), n_d),
                            speaker=np.tile(['A', 'B'], n_d * n // 2)))
    y = rng.integers(0, 2, len(tab))
    x = rng.normal(size=(len(tab), 6)).astype(np.float32)
    x[:, 0] += 3 * (2 * y - 1)                  # each utterance's features announce y ...
    target = np.r_[0, y[:-1]]                   # ... and the label to predict is the previous utterance's y
    first = tab.position.to_numpy() == 0
    acc = {}
    for k in (0, 1):
        torch.manual_seed(0)
        cm = ContextModel(Embed(), 12, 2, k=k, dropout=0.0)
        idx, rel = context_index(tab, k)
        opt = torch.optim.Adam(cm.parameters(), lr=1e-2)
        X, T = torch.as_tensor(x), torch.as_tensor(target)
        tr = tab.dialog.to_numpy() < 40
        for _ in range(150):
            out = cm({'x': X}, idx, rel)['emotion']
            loss = nn.functional.cross_entropy(out[torch.as_tensor(tr & ~first)], T[torch.as_tensor(tr & ~first)])
            opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad(): pred = cm.eval()({'x': X}, idx, rel)['emotion'].argmax(1).numpy()
        te = ~tr & ~first
        acc[k] = (pred[te] == target[te]).mean()
    assert acc[1] > 0.9 and acc[0] < 0.65, acc


def test_context_mean_against_loop():
    tab = dialogs(seed=4)
    idx, rel = context_index(tab, 3)
    X = np.random.default_rng(0).normal(size=(len(tab), 5))
    same, other = context_mean(X, idx, rel)
    for i in range(len(tab)):
        for got, code in ((same, REL_SAME), (other, REL_OTHER)):
            js = idx[i][rel[i] == code]
            np.testing.assert_allclose(got[i], X[js].mean(0) if len(js) else 0, atol=1e-12)


def test_with_unified_model():
    "The wrapper over cmer.model.UnifiedModel (text + audio): trains a step, passes on the model's own outputs."
    from cmer.model import UnifiedModel, ModelConfig, random_batch
    torch.manual_seed(0)
    dims = {'audio': 20, 'text': 12}
    um = UnifiedModel(dims, 4, ModelConfig(d_shared=16, rnn_hidden=8, text_hidden=16, audio_conv=8))
    cm = ContextModel(unified_embed(um), um.cfg.d_shared, 4, k=2)
    tab = dialogs(1, 6, seed=5)
    b = random_batch(len(tab), dims, seed=1)
    idx, rel = context_index(tab, 2)
    out = cm(b, idx, rel)
    assert out['emotion'].shape == (len(tab), 4) and out['inner']['unified'].shape == (len(tab), 16)
    loss = nn.functional.cross_entropy(out['emotion'], torch.zeros(len(tab), dtype=torch.long))
    loss.backward()
    assert all(any(p.grad is not None and p.grad.abs().sum() > 0 for p in um.encoders[m].parameters()) for m in dims)   # trained end to end
