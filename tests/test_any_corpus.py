"""A user's own corpus through `cmer run` to `result.txt` (issue 13): a generic CSV with arbitrary ids and labels under each
protocol, and a corpus in MELD's release layout under its official split."""
import json, subprocess
from pathlib import Path
import numpy as np, pandas as pd
from conftest import CMER

WORDS = {'calm': 'quiet gentle slow easy soft peaceful rest breathe smile still'.split(),
         'tense': 'hurry loud sharp angry fast nervous shout push alarm rush'.split()}
FILLER = 'the a we it that this today really then now'.split()


def own_csv(folder:Path, seed:int=0) -> Path:
    "48 clips of 6 speakers in 3 sessions, ids like clip007, labels calm/tense, text only; session 1 train, 2 dev, 3 test."
    rng, rows = np.random.default_rng(seed), []
    for k in range(48):
        sess, spk = k // 16 + 1, f"spk{k // 8}"
        lab = ('calm', 'tense')[k % 2]
        words = list(rng.choice(WORDS[lab], 3)) + list(rng.choice(FILLER, 3))
        rng.shuffle(words)
        rows.append(dict(id=f'clip{k:03d}', label=lab, text=' '.join(words).capitalize() + '.', speaker=spk,
                         gender='FM'[(k // 8) % 2], session=sess, split=('train', 'dev', 'test')[sess - 1], dialog=f'd{k // 4}', position=k % 4))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder/'my_clips.csv', index=False)
    return folder/'my_clips.csv'


def run(*args, cwd=None):
    r = subprocess.run([CMER, 'run', *map(str, args)], capture_output=True, text=True, timeout=1800, cwd=cwd)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_own_csv_every_protocol(tmp_path):
    from cmer.evaluate import evaluate_step
    csv, out = own_csv(tmp_path/'data'), tmp_path/'out'
    run('--corpus', csv, '--out', out, '--steps', 'corpus', 'text_aug', 'text_embed', 'evaluate', '--labels', 'calm,tense',
        '-p', 'epochs=6', '-p', 'final_model=false', '-p', 'projection=pca')
    res = json.loads((out/'results'/'results.json').read_text())
    assert res['classes'] == ['calm', 'tense'] and res['protocol'] == 'loso' and res['n_utterances'] == 48
    txt = (out/'results'/'result.txt').read_text()
    assert 'protocol    loso' in txt and 'weighted F1' in txt and 'SYNTHETIC' not in txt
    assert res['summary']['ua']['mean'] > 0.6, res['summary']          # the words carry the label
    for protocol, n_folds in [('speaker', 6), ('split', 1)]:
        evaluate_step(csv, out, protocol=protocol, epochs=6, final_model=False, projection='pca')
        res = json.loads((out/'results'/'results.json').read_text())
        txt = (out/'results'/'result.txt').read_text()
        assert res['protocol'] == protocol and len(res['folds']) == n_folds and res['speaker_independent']
        assert f'protocol    {protocol}' in txt and 'folds       ' in txt
    assert res['folds'][0]['n_test'] == 16                            # split: session 3 is the test part


def test_meld_layout_official_split(tmp_path):
    from cmer.corpus import write_meld_fixture
    meld, out = write_meld_fixture(tmp_path/'MELD.Raw'), tmp_path/'out'
    r = run('--corpus', meld, '--out', out, '--steps', 'corpus', 'text_aug', 'text_embed', 'evaluate', '--protocol', 'split',
            '-p', 'epochs=3', '-p', 'final_model=false', '-p', 'projection=pca', '-p', 'fusion_table=false')
    res = json.loads((out/'results'/'results.json').read_text())
    assert res['protocol'] == 'split' and res['classes'][:2] == ['neutral', 'surprise'] and len(res['folds']) == 1
    assert res['folds'][0]['n_test'] == 3 and 'protocol    split' in (out/'results'/'result.txt').read_text()
    rep = json.loads((out/'corpus'/'manifest.json').read_text())['report']
    assert rep['lines_decoded_cp1252'] == 1 and rep['format'] == 'meld'
