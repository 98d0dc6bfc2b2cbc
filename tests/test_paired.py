"The PAIRED corpus (real EmoDB speech, IEMOCAP transcripts, FER2013 faces paired by label): its sessions, pools, labels and label text."
import json
from pathlib import Path
import numpy as np, pandas as pd
import pytest

from cmer.core import get_config

DATA = get_config().data_dir
NEED = ('emodb/labels.csv', 'iemocap.csv', 'fer2013_48x48.npz')
pytestmark = pytest.mark.skipif(not DATA or not all((Path(DATA)/f).exists() for f in NEED),
                                reason='needs the real data folder (emodb/, iemocap.csv, fer2013_48x48.npz)')


@pytest.fixture(scope='module')
def full_plan():
    "The plan of the full PAIRED corpus (all 339 clips), without writing it."
    from cmer.demo import paired_plan
    plan, _ = paired_plan(DATA, seed=0)
    return pd.DataFrame(plan)


@pytest.fixture(scope='module')
def small_paired(tmp_path_factory):
    "A small PAIRED corpus written to disk (4 clips per speaker)."
    from cmer.demo import paired_corpus
    return paired_corpus(tmp_path_factory.mktemp('paired')/'corpus', max_per_speaker=4, fps=10)


def test_every_clip_once(full_plan):
    "All 339 four-class EmoDB clips become utterances, each once, with EmoDB's own class."
    from cmer.corpus import read_emodb
    emo = read_emodb(Path(DATA)/'emodb')
    emo = emo[emo.label4 != ''].set_index('utt_id')
    assert len(full_plan) == len(emo) == 339
    assert full_plan.emodb.is_unique and set(full_plan.emodb) == set(emo.index)
    assert (full_plan.emodb.map(emo.label4) == full_plan.cls).all()


def test_sessions_are_speaker_independent(full_plan):
    "Each EmoDB speaker is in exactly one session; each session is one female and one male speaker of that gender."
    from cmer.corpus import EMODB_SPEAKERS
    assert (full_plan.groupby('emodb_speaker').session.nunique() == 1).all()
    assert (full_plan.groupby('emodb_speaker').gender.nunique() == 1).all()
    per = full_plan.groupby(['session', 'gender']).emodb_speaker.unique()
    assert sorted(full_plan.session.unique()) == [1, 2, 3, 4, 5] and len(per) == 10
    assert all(len(v) == 1 and EMODB_SPEAKERS[v[0]] == g for (s, g), v in per.items())
    assert full_plan.emodb_speaker.nunique() == 10


def test_disjoint_pools(full_plan):
    "No face and no sentence is used in two places; each session's sentences come from one IEMOCAP session, its faces from its own pool."
    assert full_plan.fer_index.is_unique
    rest = full_plan.groupby(['session', 'gender']).rest_fer_index.unique()
    assert all(len(v) == 1 for v in rest)
    rest = {int(v[0]) for v in rest}
    assert len(rest) == 10 and not rest & set(full_plan.fer_index)
    assert full_plan.source.is_unique and full_plan.transcript.str.lower().str.strip().is_unique
    assert (full_plan.source.str[3:5].astype(int) == full_plan.session).all()
    assert (full_plan.groupby('source').session.nunique() == 1).all()
    with np.load(Path(DATA)/'fer2013_48x48.npz') as z: X, split = z['X'], z['split']
    assert set(split[full_plan.fer_index]) == {'validation'} and set(split[list(rest)]) == {'validation'}
    # no identical image in two sessions either (FER2013 has exact duplicates)
    owner = {}
    for s, i in zip(full_plan.session, full_plan.fer_index):
        h = X[i].tobytes(); assert owner.setdefault(h, s) == s


def test_labels_agree_across_modalities(full_plan):
    "The EmoDB clip, the IEMOCAP transcript (hap+exc -> hap) and the FER2013 face of an utterance carry the same class."
    from cmer.corpus import read_flat_csv
    from cmer.demo import FER_CLASS
    iem = read_flat_csv(Path(DATA)/'iemocap.csv')[0].set_index('utt_id')
    assert (full_plan.source.map(iem.label_raw).replace('exc', 'hap') == full_plan.cls).all()
    assert (full_plan.source.map(iem.transcript) == full_plan.transcript).all()
    with np.load(Path(DATA)/'fer2013_48x48.npz') as z: y, classes = z['y'], list(z['classes'])
    assert [classes[y[i]] for i in full_plan.fer_index] == [FER_CLASS[c] for c in full_plan.cls]
    assert {classes[y[i]] for i in full_plan.rest_fer_index} == {'neutral'}


def test_written_corpus_reads_back_labelled_paired(small_paired):
    "The written corpus parses cleanly in the IEMOCAP layout, its labels are the plan's, and its README and marker say PAIRED."
    from cmer.corpus import read_iemocap
    from cmer.demo import PAIRED_LABEL, corpus_kind, SR
    import soundfile as sf
    df, rep = read_iemocap(small_paired)
    info = json.loads((small_paired/'demo_corpus.json').read_text())
    assert len(df) == 40 and not rep['malformed_lines'] and not rep['missing_wav'] and not rep['time_mismatch']
    u = pd.DataFrame(info['utterances']).set_index('utt_id')
    assert (df.set_index('utt_id').label_raw == u.cls.reindex(df.utt_id).values).all()
    assert info['class_counts'] == {'neu': 10, 'ang': 10, 'sad': 10, 'hap': 10}
    assert PAIRED_LABEL in (small_paired/'README.md').read_text()
    assert info['paired'] is True and info['kind'] == 'paired' and info['data_label'] == PAIRED_LABEL
    assert corpus_kind(small_paired) == dict(kind='paired', label=PAIRED_LABEL, speaker_sides={'F': 'left', 'M': 'right'})
    y, sr = sf.read(df.wav.iloc[0])
    assert sr == SR and abs(len(y) / SR - 2.0) < 0.01


def test_paired_is_deterministic(full_plan):
    "The same seed gives the same corpus plan; another seed another pairing."
    from cmer.demo import paired_plan
    again = pd.DataFrame(paired_plan(DATA, seed=0)[0])
    pd.testing.assert_frame_equal(again, full_plan)
    other = pd.DataFrame(paired_plan(DATA, seed=1)[0])
    assert set(other.emodb) == set(full_plan.emodb) and (other.fer_index.values != full_plan.fer_index.values).any()


def test_corpus_step_reports_paired_not_synthetic(small_paired, tmp_path):
    "The corpus step's report tells PAIRED from SYNTHETIC, so every result downstream can carry the right label."
    from cmer.corpus import corpus_step, corpus_summary
    from cmer.demo import PAIRED_LABEL
    rep = corpus_step(small_paired, tmp_path/'out')['report']
    assert rep['paired'] is True and rep['synthetic'] is False
    assert rep['data_kind'] == 'paired' and rep['data_label'] == PAIRED_LABEL
    assert '(PAIRED demo corpus)' in corpus_summary(tmp_path/'out')
