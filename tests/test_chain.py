"The papermill chain end to end on the tiny SYNTHETIC demo corpus, through the installed `cmer` command."
import json, os, subprocess, time
from pathlib import Path
from conftest import CMER
from cmer.chain import pipeline_steps, stale_temps, plan_steps
from cmer.core import load_manifest


def cmer(*args, timeout=1800, env=None):
    return subprocess.run([CMER, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def test_chain_runs_every_step_then_skips_them(tiny_corpus, tmp_path):
    out = tmp_path/'out'
    tmp, runtime = tmp_path/'tmp', tmp_path/'runtime'
    for d in (tmp, runtime): d.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), JUPYTER_RUNTIME_DIR=str(runtime))
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = pipeline_steps()
    plan = plan_steps(steps, steps, {})                       # augmentation steps nothing reads (issue 20 item 2)
    chain = json.loads((out/'chain.json').read_text())
    assert [s['step'] for s in chain['steps']] == [s.name for s in steps]
    assert [s['status'] for s in chain['steps']] == ['not needed' if s.name in plan else 'ran' for s in steps], chain['steps']
    for s in steps:
        if s.name in plan:
            assert f"{s.number:02d} {s.name}: not needed: it makes only augmented views" in r.stdout
            continue
        assert (out/'notebooks'/s.path.name).exists(), s.name
        assert load_manifest(out, s.name) is not None, f'{s.name} wrote no manifest'
    # nothing outside the output folder (issue 19 item 10): no temporary folders of the chapter checks, no kernel connection files;
    # no stray kernel log on the console; the progress line only on a terminal (this is a pipe)
    assert sorted(tmp.iterdir()) == [] and sorted(runtime.iterdir()) == [], (sorted(tmp.iterdir()), sorted(runtime.iterdir()))
    assert not (out/'.chain').exists()
    assert 'KeyboardInterrupt' not in r.stderr and '[IPKernelApp]' not in r.stderr, r.stderr[-2000:]
    assert '\r' not in r.stdout and '\x1b[K' not in r.stdout
    assert load_manifest(out, 'corpus')['report']['synthetic'] is True
    # every step's counts, warnings and failures are printed under it and kept in chain.json (issue 14 item 11)
    for s in chain['steps']:
        assert {'counts', 'n_warnings', 'n_failures', 'warnings', 'failures'} <= set(s), s
        m = load_manifest(out, s['step'])
        assert s['n_warnings'] == (0 if m is None else len(m['warnings'])) and (m is not None or s['status'] == 'not needed'), s
    assert 'n_utterances 40' in r.stdout and r.stdout.count(' warning') >= len(steps) - len(plan), r.stdout
    # a default run has nothing to warn about on the demo corpus: step 04 notes (not warns) that step 03 was not needed
    assert [(s['step'], s['warnings']) for s in chain['steps'] if s['n_warnings']] == [], chain['steps']
    if 'audio_aug' in plan: assert load_manifest(out, 'mfcc')['report']['augmented_audio'].startswith('none: step 03 audio_aug was not needed')
    assert stale_temps(out) == [] and not list((out/'notebooks').glob('*.FAILED.ipynb')), 'a complete run leaves no temporary files'
    if any(s.name == 'evaluate' for s in steps):
        assert (out/'results'/'result.txt').exists()

    t0 = time.time()
    r = cmer('run', '--corpus', tiny_corpus, '--out', out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(s['status'] == ('not needed' if s['step'] in plan else 'skipped') for s in json.loads((out/'chain.json').read_text())['steps'])
    assert time.time() - t0 < 60, 'a fully up-to-date chain starts no kernel'

    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', 'corpus', '-p', 'label_map=6class')
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'corpus: running (parameter label_map changed' in r.stdout
    assert load_manifest(out, 'corpus')['report']['label_map'] == '6class'


def test_chain_stops_at_a_failing_step_with_its_name(tiny_corpus, tmp_path):
    out = tmp_path/'out'
    (out/'corpus').mkdir(parents=True)
    bad = tmp_path/'bad.json'
    bad.write_text('{"classes": ["neu"], "map": {"neu": "happy"}}')   # maps to a class it does not list
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '-p', f'label_map={bad}')
    assert r.returncode == 1
    assert 'step 01 corpus failed: ValueError' in r.stderr and "maps to ['happy']" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr          # the error line alone: no stray kernel log (issue 19 item 10)
    assert (out/'notebooks'/'01_corpus.FAILED.ipynb').exists()
    assert not (out/'corpus'/'utterances.csv').exists(), 'nothing half-written'
    assert len(json.loads((out/'chain.json').read_text())['steps']) == 0 if (out/'chain.json').exists() else True


def test_cli_errors_are_one_line_and_non_zero(tmp_path):
    r = cmer('run', '--corpus', tmp_path/'missing', '--out', tmp_path/'out')
    assert r.returncode == 1 and r.stderr.strip() == f"cmer: error: corpus {tmp_path/'missing'} does not exist"
    r = cmer('run', '--corpus', tmp_path, '--out', tmp_path/'out', '--steps', 'nosuchstep')
    assert r.returncode == 1 and "no step named 'nosuchstep'" in r.stderr
    r = cmer('frobnicate')
    assert r.returncode == 2
    r = cmer('--version')
    assert r.returncode == 0 and r.stdout.startswith('cmer ')


def test_demo_corpus_command_refuses_a_foreign_folder(tmp_path):
    (tmp_path/'mine.txt').write_text('precious')
    r = cmer('demo-corpus', tmp_path, '--sessions', '1', '--per-session', '4')
    assert r.returncode == 1 and 'is not a cmer demo corpus' in r.stderr
    assert (tmp_path/'mine.txt').read_text() == 'precious'


def test_text_only_steps_run_alone(tiny_corpus, tmp_path):
    "Issue 20 item 2: `--steps corpus text_embed evaluate` runs those three steps and nothing else (it failed with FileNotFoundError on "
    "text_aug/augmented.csv, then needed step 02): text_embed embeds the back-translated view only when step 02 made it."
    out = tmp_path/'out'
    assert not any(s.needs for s in pipeline_steps() if s.name == 'text_embed')
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', 'corpus', 'text_embed', 'evaluate', '--checks', 'never',
             '-p', 'epochs=2', '-p', 'fusion_table=false', '-p', 'final_model=false')
    assert r.returncode == 0, r.stdout + r.stderr
    ran = [s['step'] for s in json.loads((out/'chain.json').read_text())['steps'] if s['status'] == 'ran']
    assert ran == ['corpus', 'text_embed', 'evaluate'], ran
    assert 'runs too' not in r.stdout, r.stdout
    assert load_manifest(out, 'text_aug') is None and load_manifest(out, 'audio_aug') is None and load_manifest(out, 'mfcc') is None
    assert load_manifest(out, 'text_embed')['report']['augmented_view'] == dict(
        embedded=False, why='step 02 text_aug has not made back-translations (not needed: the model reads no augmented view)')
    assert (out/'results'/'result.txt').exists() and (out/'features'/'text.npz').exists() and not (out/'features'/'text_aug.npz').exists()


def test_labels_do_not_invalidate_features(tiny_corpus, tmp_path):
    "Issue 20 item 2: a new label map re-runs corpus and evaluate, and not the steps that read only transcripts, audio or video of the "
    "utterance table (`cmer.core.Columns`; before, text_aug, mfcc, frames, frame_embed and text_embed all ran again)."
    out = tmp_path/'out'
    steps = ['corpus', 'text_aug', 'mfcc', 'frames', 'frame_embed', 'text_embed', 'evaluate']
    common = ['--checks', 'never', '-p', 'epochs=2', '-p', 'fusion_table=false', '-p', 'final_model=false', '-p', 'audio_features=mfcc']
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', *steps, *common)
    assert r.returncode == 0, r.stdout + r.stderr
    lm = tmp_path/'reordered.json'         # the same utterances and classes, in another order: every label_id changes
    lm.write_text(json.dumps({'classes': ['hap', 'sad', 'ang', 'neu'], 'map': {'neu': 'neu', 'ang': 'ang', 'sad': 'sad', 'hap': 'hap', 'exc': 'hap'}}))
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', *steps, *common, '-p', f'label_map={lm}')
    assert r.returncode == 0, r.stdout + r.stderr
    status = {s['step']: s['status'] for s in json.loads((out/'chain.json').read_text())['steps']}
    assert status == dict(corpus='ran', text_aug='skipped', mfcc='skipped', frames='skipped', frame_embed='skipped',
                          text_embed='skipped', evaluate='ran'), status
    assert load_manifest(out, 'corpus')['report']['classes'] == ['hap', 'sad', 'ang', 'neu']
    assert load_manifest(out, 'text_embed')['report']['augmented_view']['embedded'] is True      # step 02 ran: its view is embedded
