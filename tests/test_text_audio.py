"""The text path end to end on a flat CSV corpus (real transcripts, no audio), and the model registry's command."""
import contextlib, io, json
from pathlib import Path
import numpy as np, pandas as pd, pytest

from cmer.core import features_dir, load_features, load_manifest, get_config
from cmer.corpus import corpus_step


def _flat_csv(path: Path, n: int = 12) -> Path:
    "The first `n` real transcripts of iemocap.csv when the data folder is there, else a few built-in ones."
    cfg = get_config()
    real = cfg.data_dir/'iemocap.csv' if cfg.data_dir else None
    if real and real.exists():
        df = pd.read_csv(real, dtype=str, keep_default_na=False).drop(columns=['Unnamed: 0'], errors='ignore').head(n)
    else:
        df = pd.DataFrame({'FileName': [f'Ses01F_impro01_F00{i}' for i in range(3)],
                           'Sentences': ['Excuse me.', 'Do you have your forms?', 'Yeah.'], 'Label': ['neu', 'neu', 'hap']})
    df.loc[len(df)] = {**{c: '' for c in df.columns}, 'FileName': 'Ses05M_script03_2_M099', 'Label': 'ang'}   # an empty transcript
    df.to_csv(path, index=False)
    return path


def test_flat_csv_text_path(tmp_path):
    from cmer.text_aug import text_aug_step, load_augmented
    from cmer.audio_aug import audio_aug_step
    from cmer.mfcc import mfcc_step
    from cmer.text_embed import text_embed_step
    flat, out = _flat_csv(tmp_path/'flat.csv'), tmp_path/'out'
    corpus_step(flat, out)
    n = len(pd.read_csv(flat))
    ta = text_aug_step(flat, out, cache=False)
    aug = load_augmented(out)
    assert len(aug) == n - 1 and ta['failures'][0]['item'] == 'Ses05M_script03_2_M099'
    assert ta['report']['n_changed'] >= 1
    # audio steps skip a corpus without audio, and say so
    for step in (audio_aug_step, mfcc_step):
        m = step(flat, out)
        assert 'has no audio' in m['report']['skipped'] and m['outputs'] == {}
    te = text_embed_step(flat, out)
    t, taug = load_features(features_dir(out)/'text.npz'), load_features(features_dir(out)/'text_aug.npz')
    lex = te['report']['lexical']['dim']                  # the lexical view fitted on the corpus's transcripts, appended
    assert lex > 0 and t.dim == (384 + lex,) and len(t) == n - 1 and list(taug.ids) == list(aug.utt_id)
    assert np.allclose(np.linalg.norm(t.data[:, :384], axis=1), 1, atol=1e-5)
    assert te['report']['model'] == 'minilm'
    # nothing changed: every step is skipped the second time
    assert text_embed_step(flat, out)['started'] == te['started']


def test_cli_models_list_and_path():
    from cmer.models import cli_models, model_dir
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): cli_models([])
    text = buf.getvalue()
    for name in ('minilm', 'mpnet', 'whisper-base', 'vosk-en', 'opus-mt-en-fr'): assert name in text
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): cli_models(['path', 'minilm'])
    assert Path(buf.getvalue().strip()) == model_dir('minilm')
    with pytest.raises(Exception, match='CMER_MODEL_VOSK_EN'): cli_models(['path', 'vosk-en'])
