"""The text_aug step with the real Apertium pairs on sentences that crash eng-cat's transfer (issue 14 item 19): the rest stays
batched, the bad ones go through a pivot or fail, and the step report counts them. A sentence's back-translation is its own:
the same alone, in any batch, cached or not (issue 19 item 6)."""
import functools, os, random
from pathlib import Path
import pandas as pd
import pytest

from cmer.corpus import corpus_step
from cmer.core import load_manifest
from cmer import text_aug
from cmer.text_aug import ApertiumTranslator, BackTranslator, TRANSLATORS, load_augmented, text_aug_step, text_aug_summary

BAD = ['Ross and I are not getting married.', 'Monica and Chandler are not getting married.']
GOOD = ['Excuse me.', 'Yeah.', 'Is there a problem?', 'Who told you to get in this line?', 'Okay. But I didn\'t tell you to get in this line.',
        'You need to fill out one of these forms.', 'I have been waiting for an hour.', 'That is not fair.', 'I know, I know.',
        'What do you want me to do?', 'Go back to the end of the line.', 'Thank you very much.']


@pytest.fixture
def flat(tmp_path):
    "A flat IEMOCAP-style CSV: 62 ordinary transcripts, the two crashing sentences (one behind a marker) and an empty one."
    texts = GOOD[:6] + [BAD[0]] + GOOD[6:] + [f'I have {i} apples.' for i in range(50)] + ['[LAUGHTER] ' + BAD[1], '']
    ids = [f'Ses01F_impro01_F{i:03d}' for i in range(len(texts))]
    p = tmp_path/'flat.csv'
    pd.DataFrame({'FileName': ids, 'Sentences': texts, 'Label': ['neu'] * len(texts)}).to_csv(p, index=False)
    corpus_step(p, tmp_path/'out')
    return p, tmp_path/'out', ids


def test_crashing_sentences_fall_back_through_pivot(flat):
    "eng-cat loses its whole batch over each bad sentence: few calls (bisection), both translated through Spanish and noted."
    p, out, ids = flat
    m = text_aug_step(p, out, cache=False)
    r = m['report']
    assert (r['n_utterances'], r['n_empty'], r['n_translated'], r['n_failed'], r['n_failed_empty'], r['n_fallback']) == (65, 1, 64, 0, 0, 2)
    en_ca = r['hops'][0]
    assert en_ca['hop'] == 'en>ca' and en_ca['fallback'] == 2 and en_ca['failed'] == 0
    # 64 sentences, two bad ones: bisection costs about 2 log2(64) calls per bad sentence (+2 for its pivot), not one per sentence
    assert 3 <= en_ca['calls'] <= 1 + 2 * 2 * 6 + 2 * 2, en_ca
    assert [h['calls'] for h in r['hops'][1:]] == [1, 1]
    a = load_augmented(out).set_index('utt_id')
    assert (a.transcript_aug.str.strip() != '').all()
    assert a.loc[ids[6], 'transcript_aug'] == 'Ross and I are not marrying.'
    assert a.loc[ids[63], 'transcript_aug'].startswith('[LAUGHTER] Monica and Chandler')
    noted = a.index[a.note.fillna('') != ''].tolist()
    assert noted == [ids[6], ids[63]] and 'translated through spa' in a.loc[ids[6], 'note']
    assert len(m['warnings']) == 2 and ids[6] in m['warnings'][0]
    assert '2 by a fallback pivot' in text_aug_summary(out) and '0 failed' in text_aug_summary(out)


def test_no_fallback_counts_failures(flat, monkeypatch):
    "Without a pivot the bad sentences fail: named in the failures, counted, left out of augmented.csv; the rest is batched."
    p, out, ids = flat
    monkeypatch.setitem(TRANSLATORS, 'apertium', functools.partial(ApertiumTranslator, fallback=False))
    m = text_aug_step(p, out, cache=False)
    r = m['report']
    assert (r['n_translated'], r['n_failed'], r['n_failed_empty'], r['n_fallback']) == (62, 2, 0, 0)
    failed = {f['item']: f['error'] for f in m['failures']}
    assert set(failed) == {ids[6], ids[63], ids[64]}
    assert failed[ids[6]].startswith('back-translation failed: apertium:eng-cat') and 'eng-cat' in failed[ids[6]] and 'back-translation failed' in failed[ids[63]]
    assert [h['sentences'] for h in r['hops']] == [64, 62, 62]     # the failed ones do not go on to the next hops
    assert sorted(load_augmented(out).utt_id) == sorted(set(ids) - {ids[6], ids[63], ids[64]})


def test_empty_translation_is_a_failure(flat, monkeypatch):
    "A hop that returns an empty line for a sentence: failed and counted as an empty translation, not written as ''."
    p, out, ids = flat
    class Mute(ApertiumTranslator):
        def translate(self, texts): return ['' if t == 'Yeah.' else o for t, o in zip(texts, super().translate(texts))]
    monkeypatch.setitem(TRANSLATORS, 'apertium', Mute)
    r = text_aug_step(p, out, chain='en>es>en', cache=False)['report']
    assert (r['n_failed'], r['n_failed_empty']) == (1, 1)
    assert ids[1] not in set(load_augmented(out).utt_id)


def test_bisection_keeps_batches(monkeypatch):
    "A 600-sentence batch with one bad sentence: about 2 log2(600) calls, not 600; the alignment is kept."
    tr = ApertiumTranslator('en', 'ca')
    texts = [f'I have {i} apples.' for i in range(600)]
    texts[417] = BAD[0]
    got = tr.translate(texts)
    assert got[0] == 'Tinc 0 pomes.' and got[599] == 'Tinc 599 pomes.' and got[417] == 'Ross i jo no estan casant-se.'
    assert tr.calls <= 1 + 2 * 10 and list(tr.fallbacks) == [BAD[0]]


CONTEXT = ['I just--', 'No.', 'Sí, significant no vaig morir dins un fiery xoc de pla.', '5 apples are here.', "Well, we're not-"]


def real_texts(n:int, seed:int=0) -> list[str]:
    "`n` random transcripts of the real iemocap.csv when the data folder has it, else the sentences of this file."
    from cmer.core import get_config
    d = get_config().data_dir
    if d and (Path(d)/'iemocap.csv').exists():
        from cmer.corpus import read_flat_csv
        t = sorted(set(read_flat_csv(Path(d)/'iemocap.csv')[0].transcript) - {''})
        return random.Random(seed).sample(t, n)
    return GOOD + [f'I have {i} apples.' for i in range(n - len(GOOD))]


def test_a_sentence_translates_the_same_alone_in_any_batch_cached_or_not(tmp_path):
    "Apertium carried state from line to line and the HMM tagger grows its model as it goes: 248 of 7,433 IEMOCAP texts differed between cache=true and false."
    texts = real_texts(120)
    bt = lambda cache=None: BackTranslator('en>ca>es>en', cache=cache)
    whole, fails = bt()(texts)
    assert not fails
    order = list(range(len(texts))); random.Random(1).shuffle(order)
    shuffled = bt()([texts[i] for i in order])[0]
    assert [shuffled[order.index(i)] for i in range(len(texts))] == whole                      # any order
    halves = bt()(texts[60:])[0] + bt()(texts[:60])[0]
    assert halves[60:] + halves[:60] == whole                                                   # any batch
    mixed = bt()([x for t in texts[:20] for x in (CONTEXT[len(t) % len(CONTEXT)], t)])[0][1::2]
    assert mixed == whole[:20]                                                                  # after any neighbour
    alone = [bt()([t])[0][0] for t in texts[:8]]
    assert alone == whole[:8]                                                                   # alone
    cache = tmp_path/'c.sqlite'
    bt(cache)(CONTEXT + [texts[i] for i in order[:50]])                                         # the cache's history: other batches
    assert bt(cache)(texts)[0] == whole and bt(cache)(texts)[0] == whole                        # cached or not
