"""Corpus readers beyond IEMOCAP (issue 13 item 1) and the IEMOCAP reader's hardening (issue 14 items 8 and 10).

Fixtures of each layout are built here, in-process: a generic CSV of one's own clips, MELD's release layout
(no real MELD is in the data folder), the flat iemocap.csv format and the IEMOCAP release layout."""
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest

from cmer.core import load_manifest
from cmer.corpus import (COLUMNS, CorpusFormatError, corpus_step, load_utterances, read_corpus, read_iemocap, write_fixture_corpus,
                         write_meld_fixture)
from cmer.protocols import make_folds, check_folds, is_speaker_independent


def _own_csv(root: Path, extra_line: bytes = b'') -> Path:
    "A generic CSV: arbitrary ids, relative wav paths, its own labels, speakers, dialogs with start times, a split; one line in cp1252."
    import soundfile as sf
    (root/'media').mkdir(parents=True, exist_ok=True)
    for k in (1, 2, 4): sf.write(root/'media'/f'clip00{k}.wav', np.zeros(4000, np.int16), 16000)
    body = ('id,label,text,audio,speaker,gender,split,dialog,start\n'
            'clip001,calm,Fine by me.,media/clip001.wav,ann,F,train,call1,3.0\n'
            'clip002,tense,"No, absolutely not.",media/clip002.wav,bob,M,train,call1,1.0\n'
            'clip003,calm,Sure.,media/clip003.wav,cid,M,test,call2,0.5\n'       # media/clip003.wav does not exist
            'clip004,tense,Why?,media/clip004.wav,dee,F,dev,call2,2.0\n').encode()
    p = root/'corpus.csv'
    p.write_bytes(body + 'clip005,calm,It’s all right … really.,,ann,F,test,call3,0.0\n'.encode('cp1252') + extra_line)
    return p


def test_generic_csv_runs_with_any_ids_and_its_own_labels(tmp_path):
    csv = _own_csv(tmp_path)
    m = corpus_step(csv, tmp_path/'out')
    r, t = m['report'], load_utterances(tmp_path/'out')
    assert r['format'] == 'csv' and r['label_map'] == 'data' and r['classes'] == ['calm', 'tense']
    assert t.utt_id.tolist() == ['clip001', 'clip002', 'clip003', 'clip004', 'clip005']
    assert set(COLUMNS) <= set(t.columns) and {'position', 'split'} <= set(t.columns)
    assert t.position.tolist() == [1, 0, 0, 1, 0]                        # start-time order within each dialog
    assert t.split.tolist() == ['train', 'train', 'test', 'dev', 'test'] and t.session.isna().all()
    assert t.wav[0] == str((tmp_path/'media'/'clip001.wav').resolve()) and t.wav[2] == ''
    assert r['missing_wav'] == ['clip003'] and 'clip003: wav missing' in m['warnings']
    assert t.transcript[4] == 'It’s all right … really.' and r['lines_decoded_cp1252'] == 1
    assert r['cp1252_lines'] == [f'{csv}:6'] and r['per_split'] == {'train': 2, 'dev': 1, 'test': 2}
    # protocols on a table without sessions: loso says what to use instead; split and speaker work
    with pytest.raises(ValueError, match="use protocol 'speaker'"): make_folds(t, 'loso')
    (f,) = make_folds(t, 'split')
    assert f['train'].tolist() == [0, 1] and f['val'].tolist() == [3] and f['test'].tolist() == [2, 4]
    sp = make_folds(t, 'speaker'); check_folds(t, sp, True)
    assert sorted(np.concatenate([x['test'] for x in sp]).tolist()) == list(range(5))


def test_generic_csv_labels_fix_the_classes_and_reject_others(tmp_path):
    csv = _own_csv(tmp_path)
    m = corpus_step(csv, tmp_path/'out', labels='tense,calm')
    assert m['report']['classes'] == ['tense', 'calm'] and m['params']['labels'] == 'tense,calm'
    assert load_utterances(tmp_path/'out').label_id.tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(CorpusFormatError, match=f"{csv}:3: column 'label': 'tense' is not one of the given labels calm"):
        corpus_step(csv, tmp_path/'out2', labels='calm')
    with pytest.raises(ValueError, match='distinct non-empty'): corpus_step(csv, tmp_path/'out3', labels='calm,,tense')


def test_generic_csv_errors_name_file_line_and_column(tmp_path):
    csv = _own_csv(tmp_path, extra_line=b'clip006,calm,bad \x81 byte,,ann,F,test,call3,1.0\n')
    with pytest.raises(CorpusFormatError, match=f'{csv}:7: character 18: byte 0x81 is neither UTF-8 nor cp1252'): read_corpus(csv)
    csv = _own_csv(tmp_path, extra_line=b'clip006,calm,ok,,ann,F,test,call3,soon\n')
    with pytest.raises(CorpusFormatError, match=f"{csv}:7: column 'start': 'soon' is not a number") as e: read_corpus(csv)
    assert '-p strict=false' in str(e.value)
    df, rep = read_corpus(csv, strict=False)
    assert len(df) == 5 and rep['malformed_lines'][0].startswith(f"{csv}:7: column 'start'")
    (tmp_path/'x.csv').write_text('clip,emotion\na,b\n')
    with pytest.raises(CorpusFormatError, match=r"x.csv:1: header \['clip', 'emotion'\]: expected id, label"): read_corpus(tmp_path/'x.csv')


def test_meld_layout(tmp_path):
    root = write_meld_fixture(tmp_path/'MELD')
    m = corpus_step(root, tmp_path/'out')
    r, t = m['report'], load_utterances(tmp_path/'out')
    assert r['format'] == 'meld' and r['label_map'] == 'meld7' and r['kept'] == 10
    assert r['classes'] == ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger']
    assert t.utt_id[:3].tolist() == ['train_dia0_utt0', 'train_dia0_utt1', 'train_dia0_utt2']
    assert t.utt_id.is_unique and t.dialog.nunique() == 5 and t.session.isna().all()
    assert t.position.tolist() == [0, 1, 2, 0, 1, 0, 1, 0, 1, 0]
    assert t.split.tolist() == ['train'] * 5 + ['dev'] * 2 + ['test'] * 3
    assert t.speaker[1] == 'The Interviewer' and t.transcript[3] == 'Oh my God, he’s lost it — he’s totally lost it.'
    assert r['lines_decoded_cp1252'] == 1 and r['cp1252_lines'] == [f"{root/'train_sent_emo.csv'}:5"]
    assert t.video[0] == str(root/'train_splits'/'dia0_utt0.mp4') and t.video[9] == ''
    assert r['missing_video'] == ['test_dia3_utt0'] and 'test_dia3_utt0: video clip missing' in m['warnings']
    s = corpus_step(root, tmp_path/'out', label_map='sentiment3')['report']
    assert s['classes'] == ['neutral', 'positive', 'negative'] and s['class_counts'] == {'neutral': 3, 'positive': 2, 'negative': 5}
    # the official split is the split column; loso has no sessions to leave out
    t = load_utterances(tmp_path/'out')
    (f,) = make_folds(t, 'split')
    assert f['test'].tolist() == [7, 8, 9] and f['val'].tolist() == [5, 6] and f['train'].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="no `session` values: MELD"): make_folds(t, 'loso')


def test_meld_bad_value_names_file_line_column(tmp_path):
    root = write_meld_fixture(tmp_path/'MELD')
    f = root/'dev_sent_emo.csv'
    f.write_bytes(f.read_bytes().replace(b',sadness,negative,0,0,', b',sad,negative,zero,0,'))
    with pytest.raises(CorpusFormatError) as e: read_corpus(root)
    assert f"{f}:2: column 'Emotion': 'sad' is not one of MELD's emotions" in str(e.value)
    assert f"{f}:2: column 'Dialogue_ID': 'zero' is not a non-negative integer" in str(e.value)


def test_flat_iemocap_csv_still_read(tmp_path):
    p = tmp_path/'iemocap.csv'
    p.write_text(',FileName,Sentences,Label,text,AugmentedText\r\n0,Ses01F_impro01_F000,Excuse me.,neu,EXCUSE ME .,Excuse me.\r\n'
                 '1,Ses02M_impro02_M001,Go away!,ang,GO AWAY !,Leave!\r\n')
    df, rep = read_corpus(p)
    assert rep['format'] == 'flat-csv' and df.utt_id.tolist() == ['Ses01F_impro01_F000', 'Ses02M_impro02_M001']
    assert df.session.tolist() == [1, 2] and df.transcript_aug_original[1] == 'Leave!' and df.position.tolist() == [0, 0]
    assert corpus_step(p, tmp_path/'out')['report']['label_map'] == '4class'


def test_iemocap_transcription_in_cp1252_is_decoded_and_counted(tmp_path):
    "Issue 14 item 8: before, a cp1252 line was read with U+FFFD silently."
    fix = write_fixture_corpus(tmp_path/'fx')
    tf = fix/'Session1/dialog/transcriptions/Ses01F_impro01.txt'
    tf.write_bytes(tf.read_text().replace('That is great!', 'That’s great … really!').encode('cp1252'))
    m = corpus_step(fix, tmp_path/'out')
    t = load_utterances(tmp_path/'out').set_index('utt_id')
    assert t.loc['Ses01F_impro01_M000', 'transcript'] == 'That’s great … really!'
    assert '\ufffd' not in ''.join(t.transcript)
    assert m['report']['lines_decoded_cp1252'] == 1 and m['report']['cp1252_lines'] == [f'{tf}:2']
    assert any('decoded as cp1252' in w for w in m['warnings'])


def test_iemocap_malformed_vad_keeps_the_utterance(tmp_path):
    "Issue 14 item 10: before, strict stopped the corpus and strict=False dropped an utterance whose label and times were fine."
    fix = write_fixture_corpus(tmp_path/'fx')
    ef = fix/'Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt'
    ef.write_text(ef.read_text().replace('Ses02M_script01_1_M000\tang\t[2.5000, 3.0000, 3.5000]', 'Ses02M_script01_1_M000\tang\t[2.5000, 3.0000'))
    for strict in (True, False):
        m = corpus_step(fix, tmp_path/f'out{strict}', strict=strict)
        t = load_utterances(tmp_path/f'out{strict}').set_index('utt_id')
        assert m['report']['kept'] == 4 and t.loc['Ses02M_script01_1_M000', 'label'] == 'ang'
        assert np.isnan(t.loc['Ses02M_script01_1_M000', 'valence']) and t.loc['Ses01F_impro01_F000', 'valence'] == 2.5
        assert any(w.startswith(f'{ef}:3: Ses02M_script01_1_M000: V/A/D ratings') for w in m['warnings'])
    # any other malformed line still stops a strict read, and the error says how to relax it
    ef.write_text(ef.read_text().replace('[1.0000 - 2.5000]\tSes02M_script01_1_M000', '[1.0000 - 2.5000]\t'))
    with pytest.raises(CorpusFormatError, match=f'{ef}:3: malformed utterance line') as e: read_iemocap(fix)
    assert 'cmer run ... -p strict=false' in str(e.value)


def test_label_map_json_with_its_own_column(tmp_path):
    root = write_meld_fixture(tmp_path/'MELD')
    lm = tmp_path/'valence2.json'
    lm.write_text(json.dumps({'classes': ['neg', 'pos'], 'map': {'negative': 'neg', 'positive': 'pos'}, 'column': 'sentiment'}))
    r = corpus_step(root, tmp_path/'out', label_map=str(lm))['report']
    assert r['label_map'] == 'valence2' and r['class_counts'] == {'neg': 5, 'pos': 2} and r['dropped'] == 3


def test_media_outside_the_corpus_are_refused_unless_allowed(tmp_path):
    "A generic CSV naming `../../../../etc/passwd` or `/etc/shadow` as audio: step 01 stops naming file, line and column (issue 19 item 7)."
    import subprocess
    from conftest import CMER
    c = tmp_path/'corpus'; c.mkdir()
    csv = c/'clips.csv'
    csv.write_text('id,label,text,audio\n' + ''.join(f'u{i},{"ab"[i % 2]},hello {i},\n' for i in range(6))
                   + 'u6,a,hi,../../../../etc/passwd\nu7,b,hi,/etc/shadow\n')
    r = subprocess.run([CMER, 'run', '--corpus', csv, '--out', tmp_path/'out', '--steps', '1', '--checks', 'never'], capture_output=True, text=True)
    assert r.returncode == 1 and f"{csv}:8: column 'audio': '../../../../etc/passwd' is outside the corpus folder {c}" in r.stderr, r.stderr
    assert f"{csv}:9: column 'audio': '/etc/shadow' is outside" in r.stderr and 'allow_outside=True' in r.stderr
    assert not (tmp_path/'out'/'corpus'/'utterances.csv').exists()
    m = corpus_step(csv, tmp_path/'out', allow_outside=True)
    assert m['report']['n_utterances'] == 8 and m['params']['allow_outside'] is True


def test_single_utterance_class_is_warned_and_counted(tmp_path):
    "A label with one utterance (a typo: 'banana') becomes a class silently no more: a warning, counted, shown by the chain."
    import subprocess
    from conftest import CMER
    csv = tmp_path/'c.csv'
    csv.write_text('id,label,text\n' + ''.join(f'u{i},{"calm" if i % 2 else "tense"},words {i}\n' for i in range(10)) + 'u10,banana,yes\n')
    r = subprocess.run([CMER, 'run', '--corpus', csv, '--out', tmp_path/'out', '--steps', '1', '--checks', 'never'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "warning: class 'banana' has a single utterance (u10)" in r.stdout, r.stdout
    assert load_manifest(tmp_path/'out', 'corpus')['report']['classes_under_two'] == {'banana': 1}


def test_meld_without_clips_is_one_line_text_only(tmp_path):
    "A MELD folder without its clip folders: one warning saying the corpus is text only and how many clips are missing (was one per utterance)."
    m = corpus_step(write_meld_fixture(tmp_path/'meld', clips=False), tmp_path/'out')
    clip_warnings = [w for w in m['warnings'] if 'video clip' in w]
    assert len(clip_warnings) == 1 and 'the corpus is text only for this modality (10 missing)' in clip_warnings[0]
    assert m['report']['text_only'] is True and m['report']['with_video'] == 0


def test_csv_field_over_the_limit_says_so(tmp_path):
    "A 5 MB field is a field over the csv module's limit, with file and line (it said 'an unclosed quote?')."
    p = tmp_path/'big.csv'
    p.write_text('id,label,text\na,x,fine\nb,y,"' + 'word ' * 1_000_000 + '"\n')
    with pytest.raises(CorpusFormatError, match=f"{p}:3: a field longer than 131,072 characters"):
        read_corpus(p)


def test_corpus_demo_frames_import_no_circle():
    "corpus reads the generated corpora's marker and EmoDB itself; demo reads corpora through corpus; none imports a module above it (issue 20 item 6)."
    import ast, cmer
    def imports(mod):
        tree, names = ast.parse((Path(cmer.__file__).parent/f'{mod}.py').read_text()), set()
        for n in ast.walk(tree):                                       # function-level (lazy) imports count too
            if isinstance(n, ast.ImportFrom) and n.module and (n.level or n.module.startswith('cmer')): names.add(n.module.split('.')[-1])
            elif isinstance(n, ast.Import): names |= {a.name.split('.')[-1] for a in n.names if a.name.startswith('cmer.')}
        return names
    assert imports('corpus') <= {'core', 'media'}, imports('corpus')
    assert not {'baselines', 'evaluate', 'train', 'frames', 'chain'} & imports('demo'), imports('demo')
    assert 'demo' not in imports('frames') and 'corpus' in imports('demo')
    from cmer.corpus import corpus_kind, read_emodb, EMODB_TO_IEMOCAP4, PAIRED_LABEL
    from cmer import demo
    assert demo.corpus_kind is corpus_kind and demo.read_emodb is read_emodb and demo.PAIRED_LABEL == PAIRED_LABEL   # the old names still work
