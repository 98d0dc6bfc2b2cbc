"""Evaluation protocols (issue 13 item 2): loso, speaker, split, random, on tables the corpus readers write."""
import numpy as np, pandas as pd, pytest

from cmer.core import get_config
from cmer.corpus import corpus_step, load_utterances, write_fixture_corpus, write_meld_fixture, read_flat_csv, apply_label_map
from cmer.protocols import PROTOCOLS, make_folds, check_folds, is_speaker_independent, describe_folds


def _iemocap_like(n_per_speaker=6, seed=0):
    rng, rows = np.random.default_rng(seed), []
    for s in range(1, 6):
        for g in 'FM':
            for k in range(n_per_speaker):
                d = f'Ses{s:02d}F_impro0{k % 3}'
                rows.append(dict(utt_id=f'{d}_{g}{k:03d}', session=s, dialog=d, speaker=f'Ses{s:02d}{g}', gender=g,
                                 label_id=int(rng.integers(4)), split=''))
    return pd.DataFrame(rows)


def _fold_sets(folds):
    return [(set(f['train']) | set(f['val'] if f['val'] is not None else []), set(f['test'])) for f in folds]


@pytest.mark.parametrize('protocol', ['loso', 'speaker'])
def test_speaker_independent_protocols_test_each_utterance_once(protocol):
    t = _iemocap_like()
    folds = make_folds(t, protocol)
    assert len(folds) == (5 if protocol == 'loso' else 10)
    check_folds(t, folds, speaker_independent=True)
    tested = np.concatenate([f['test'] for f in folds])
    assert sorted(tested.tolist()) == list(range(len(t)))                    # every utterance tested exactly once
    for (seen, test), f in zip(_fold_sets(folds), folds):
        assert not set(t.speaker.iloc[list(seen)]) & set(t.speaker.iloc[list(test)]), f['name']
        assert f['train'].dtype == np.int64 and f['test'].dtype == np.int64
    assert is_speaker_independent(protocol)


def test_split_uses_the_split_column(tmp_path):
    corpus_step(write_meld_fixture(tmp_path/'MELD'), tmp_path/'out')
    t = load_utterances(tmp_path/'out')
    (f,) = make_folds(t, 'split')
    assert set(t.split.iloc[f['train']]) == {'train'} and set(t.split.iloc[f['val']]) == {'dev'}
    assert set(t.split.iloc[f['test']]) == {'test'} and len(f['train']) + len(f['val']) + len(f['test']) == len(t)
    check_folds(t, [f], speaker_independent=False)
    assert not is_speaker_independent('split', t, [f])        # Monica speaks in dev and in test
    assert describe_folds(t, [f], 'split') == ("split: the corpus' own train/dev/test split; train 5, dev 2, test 3 utterances; "
                                                "SPEAKER-DEPENDENT: 1 speaker(s) in both training and test")


def test_split_on_iemocap_is_sessions_1_to_4_against_5():
    t = _iemocap_like()
    (f,) = make_folds(t, 'split', seed=1)
    assert f['test_session'] == 5 and set(t.session.iloc[f['test']]) == {5}
    train_dialogs, dev_dialogs = set(t.dialog.iloc[f['train']]), set(t.dialog.iloc[f['val']])
    assert dev_dialogs and not train_dialogs & dev_dialogs and set(t.session.iloc[f['val']]) <= {1, 2, 3, 4}
    assert is_speaker_independent('split', t, [f])
    assert make_folds(t, 'split', seed=1)[0]['val'].tolist() == f['val'].tolist()


def test_clear_errors():
    t = _iemocap_like().assign(session=np.nan)
    with pytest.raises(ValueError, match="use protocol 'speaker'.*or 'split'"): make_folds(t, 'loso')
    with pytest.raises(ValueError, match="needs a `split` column"): make_folds(t, 'split')
    with pytest.raises(ValueError, match='have no speaker'): make_folds(t.assign(speaker=''), 'speaker')
    with pytest.raises(ValueError, match='expected one of'): make_folds(t, 'leave-one-out')


def test_same_folds_as_the_evaluation_step():
    from cmer import evaluate
    t = _iemocap_like()
    for mine, theirs in [(make_folds(t, 'loso'), evaluate.loso_folds(t)), (make_folds(t, 'random', seed=7), evaluate.random_split(t, seed=7))]:
        assert [f['name'] for f in mine] == [f['name'] for f in theirs]
        for a, b in zip(mine, theirs):
            for k in ('train', 'val', 'test'):
                assert (a[k] is None) == (b[k] is None) and (a[k] is None or np.array_equal(a[k], b[k]))


def test_protocols_on_the_demo_layout_fixture(tmp_path):
    corpus_step(write_fixture_corpus(tmp_path/'fx'), tmp_path/'out', label_map='6class')
    t = load_utterances(tmp_path/'out')
    folds = make_folds(t, 'loso'); check_folds(t, folds, True)
    assert [f['name'] for f in folds] == ['Ses01', 'Ses02']


def test_real_iemocap_transcripts_folds():
    d = get_config().data_dir
    if not d or not (d/'iemocap.csv').exists(): pytest.skip('no real data folder (CMER_DATA)')
    t, _ = apply_label_map(read_flat_csv(d/'iemocap.csv')[0], '4class')
    loso = make_folds(t, 'loso')
    assert [len(f['test']) for f in loso] == [1085, 1023, 1151, 1031, 1241]
    (s,) = make_folds(t, 'split')
    assert len(s['test']) == 1241 and len(s['train']) + len(s['val']) == 5531 - 1241
    assert 0.15 < len(s['val']) / (5531 - 1241) < 0.25
    for p in PROTOCOLS:
        f = make_folds(t, p); check_folds(t, f, is_speaker_independent(p, t, f))
