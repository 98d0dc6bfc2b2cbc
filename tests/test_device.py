"""Device selection: `resolve_device` and `CMER_DEVICE`; on a machine without a GPU, `auto` is the CPU and the
text_embed step writes the same bytes with `CMER_DEVICE=cpu` and `auto` (tiny SYNTHETIC demo corpus)."""
import os, shutil
import pytest
from cmer.core import resolve_device, get_config, MissingResourceError, features_dir, _cuda_devices


def test_resolve_device(monkeypatch):
    monkeypatch.delenv('CMER_DEVICE', raising=False)
    assert get_config().device == 'auto'
    assert resolve_device() == resolve_device('auto') == ('cuda' if _cuda_devices() else 'cpu')
    assert resolve_device('cpu') == 'cpu'
    monkeypatch.setenv('CMER_DEVICE', 'cpu')
    assert resolve_device() == resolve_device('auto') == 'cpu'        # 'auto' defers to CMER_DEVICE
    monkeypatch.setenv('CMER_DEVICE', 'cuda:x')
    with pytest.raises(ValueError, match="CMER_DEVICE='cuda:x'"): resolve_device()
    with pytest.raises(ValueError, match="device='gpu'"): resolve_device('gpu')
    if not _cuda_devices():
        with pytest.raises(MissingResourceError, match='torch.cuda.is_available'): resolve_device('cuda')


@pytest.mark.skipif(_cuda_devices() > 0, reason='compares CMER_DEVICE=cpu with auto on a machine without a GPU')
def test_text_embed_cpu_and_auto_write_the_same_bytes(tiny_corpus, tmp_path, monkeypatch):
    from cmer.corpus import corpus_step
    from cmer.text_aug import text_aug_step
    from cmer.text_embed import text_embed_step
    a, b = tmp_path/'cpu', tmp_path/'auto'
    corpus_step(tiny_corpus, a); text_aug_step(tiny_corpus, a)
    for d in ('corpus', 'text_aug'): shutil.copytree(a/d, b/d)
    monkeypatch.setenv('CMER_DEVICE', 'cpu')
    ma = text_embed_step(tiny_corpus, a)
    monkeypatch.delenv('CMER_DEVICE')
    mb = text_embed_step(tiny_corpus, b)
    assert ma['report']['device'] == mb['report']['device'] == 'cpu'
    assert ma['report']['batch_size'] == mb['report']['batch_size'] == 64
    for f in ('text.npz', 'text_aug.npz'):
        assert (features_dir(a)/f).read_bytes() == (features_dir(b)/f).read_bytes(), f


@pytest.mark.skipif(_cuda_devices() > 0, reason='compares CMER_DEVICE=cpu with auto on a machine without a GPU')
def test_fer_frame_encoder_cpu_and_auto_are_bitwise_equal(monkeypatch):
    import numpy as np
    from cmer.frame_embed import load_frame_encoder
    faces = np.random.default_rng(0).integers(0, 256, (10, 96, 96, 3), dtype=np.uint8)
    monkeypatch.setenv('CMER_DEVICE', 'cpu')
    e1 = load_frame_encoder('fer').encode(faces)
    monkeypatch.delenv('CMER_DEVICE')
    enc = load_frame_encoder('fer')
    e2 = enc.encode(faces)
    assert enc.device == 'cpu' and enc.describe()['device'] == 'cpu'
    assert all(e1[k].tobytes() == e2[k].tobytes() for k in ('emb', 'probs'))
