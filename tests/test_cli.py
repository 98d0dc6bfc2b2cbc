"`cmer run` as a user types it (issue 14): typed and path `-p` values, step selections, per-step reports, leftovers, plain papermill."
import json, os, subprocess, sys, time
from pathlib import Path
from conftest import CMER
from cmer.core import load_manifest

NBS = Path(__file__).resolve().parent.parent/'nbs'


def cmer(*args, cwd=None, timeout=900):
    return subprocess.run([CMER, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_help_imports_no_command_module():
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, '-X', 'importtime', CMER, '--help'], capture_output=True, text=True, timeout=120)
    secs = time.perf_counter() - t0
    assert r.returncode == 0 and 'predict' in r.stdout, r.stderr[-2000:]
    imported = {l.split('|')[-1].strip() for l in r.stderr.splitlines() if l.startswith('import time:')}
    assert 'torch' not in imported and 'numpy' not in imported, sorted(m for m in imported if m.startswith(('torch', 'numpy')))[:5]
    assert not {m for m in imported if m.startswith('cmer.') and m != 'cmer.cli'}, imported
    assert secs < 5, f'cmer --help took {secs:.1f} s'


def test_bad_selections_and_values_fail_before_any_work(tiny_corpus, tmp_path):
    out = tmp_path/'out'
    for steps, msg in [('9-3', 'step range 9-3 is reversed (write 3-9)'), ('97-99', 'step range 97-99 contains no step'),
                       (',', 'no steps given')]:
        r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', steps)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (steps, r.stderr)
    for p, msg in [('strict=maybe', "parameter strict of step corpus: 'maybe' is not a boolean"),
                   ('n_mfcc=many', "parameter n_mfcc of step mfcc: 'many' is not an integer"),
                   ('lr=fast', "parameter lr of step evaluate: 'fast' is not a number")]:
        r = cmer('run', '--corpus', tiny_corpus, '--out', out, '-p', p)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (p, r.stderr)
    for flag, val, msg in [('--device', 'tpu', "device='tpu': expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
                           ('--labels', 'neu,ang', "--labels sets parameter 'labels' of step 01 corpus, which --steps does not select")]:
        extra = ['--steps', '4'] if flag == '--labels' else []    # --labels sets step corpus's parameter: not selected here
        r = cmer('run', '--corpus', tiny_corpus, '--out', out, flag, val, *extra)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (flag, r.stderr)
    assert not out.exists(), 'nothing was started'


def test_ranges_selections_and_out_are_checked_before_any_work(tiny_corpus, tmp_path):
    "Issue 19 items 2 and 9: values out of range, NaN, parameters of unselected steps and bad --out folders: one line each, nothing made."
    out = tmp_path/'out'
    (tmp_path/'a_file').write_text('mine')
    for args, msg in [(['-p', 'epochs=0'], 'evaluate: parameter out of range: epochs=0 (expected an integer >= 1)'),
                      (['-p', 'n_mfcc=0'], 'mfcc: parameter out of range: n_mfcc=0 (expected an integer >= 1)'),
                      (['-p', 'p_flip=1.5'], 'image_aug: parameter out of range: p_flip=1.5 (expected a probability in [0, 1])'),
                      (['--protocol', 'bogus'], "evaluate: parameter out of range: protocol='bogus' (expected one of loso, speaker, split, random)"),
                      (['-p', 'lr=nan'], "parameter lr of step evaluate: 'nan' is not a finite number"),
                      (['-p', "model_config={'w_aug': 1e999}"], "parameter model_config of step evaluate: {'w_aug': inf} is not finite"),
                      (['-p', '04:n_mfcc=13', '--steps', '1'], 'parameter 04:n_mfcc: step 04 mfcc is not selected (selected: 01 corpus)'),
                      (['-p', 'n_mfcc=13', '--steps', 'corpus'], "parameter 'n_mfcc' belongs to step 04 mfcc, which is not selected"),
                      (['--protocol', 'speaker', '--steps', '5'], "--protocol sets parameter 'protocol' of step 11 evaluate, which --steps does not select")]:
        r = cmer('run', '--corpus', tiny_corpus, '--out', out, *args)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert not out.exists(), 'nothing was started'
    for o, msg in [(tmp_path/'a_file', f"--out {tmp_path/'a_file'}: exists and is not a folder"),
                   (tmp_path/'a_file'/'out', f"--out {tmp_path/'a_file'/'out'}: cannot be made, {tmp_path/'a_file'} is a file"),
                   (Path('/proc/self/cmer-out'), '--out /proc/self/cmer-out: cannot be made, /proc/self is not writable')]:
        r = cmer('run', '--corpus', tiny_corpus, '--out', o, '--steps', '1')
        assert r.returncode == 1 and r.stderr.startswith(f'cmer: error: {msg}') and len(r.stderr.strip().splitlines()) == 1, (o, r.stderr)
        assert 'Errno' not in r.stderr
    assert (tmp_path/'a_file').read_text() == 'mine'
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--timeout', '0')
    assert r.returncode == 2 and 'expected a whole number of seconds > 0' in r.stderr and not out.exists(), r.stderr


def test_protocol_is_checked_right_after_step_01(tmp_path):
    "Issue 19 item 4: what step 01's table shows a protocol cannot do stops the chain before step 02, with the reason."
    csv = tmp_path/'mine.csv'
    csv.write_text('id,label,text,speaker\n' + ''.join(f'u{i},{"calm" if i % 2 else "tense"},sentence number {i},Ann\n' for i in range(4)))
    out = tmp_path/'out'
    for args, msg in [([], "protocol 'loso': leave-one-session-out needs sessions, and this corpus has none"),      # the default, on a CSV without sessions
                      (['--protocol', 'speaker'], "protocol 'speaker': leave-one-speaker-out needs at least 2 speakers; the corpus has 1"),
                      (['--protocol', 'random'], "protocol 'random': fold random: no test utterances (4 utterance(s) in all)")]:
        r = cmer('run', '--corpus', csv, '--out', out, *args)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stdout, r.stderr)
        assert 'step evaluate cannot work on this corpus' in r.stderr and 'choose another with --protocol' in r.stderr
        steps = [s['step'] for s in json.loads((out/'chain.json').read_text())['steps']]
        assert steps == ['corpus'], steps                                                    # step 01 ran (or was current), nothing after it
        assert sorted(p.name for p in (out/'notebooks').iterdir()) == ['01_corpus.ipynb']


def test_typed_and_relative_values_reports_and_leftovers(tiny_corpus, tmp_path):
    "One run of step 01 from the user's folder: `-p strict=false` is False, a relative label map is found, the counts are shown."
    out = tmp_path/'out'
    # what a run killed with kill -9 leaves behind, and the copy of an earlier failure of the step
    leftovers = [out/'notebooks'/'.01_corpus.k2j4_x9a.tmp.ipynb', out/'notebooks'/'.01_corpus.k2j4_x9a.tmp.src.ipynb',
                 out/'corpus'/'.utterances.ab12cd34.tmp.csv', out/'audio_aug'/'.wav.zz9y8x7w.tmp'/'x.wav',
                 out/'notebooks'/'01_corpus.FAILED.ipynb']
    for p in leftovers: p.parent.mkdir(parents=True, exist_ok=True); p.write_text('{}')
    user = tmp_path/'me'; user.mkdir()
    lm = {'classes': ['neu', 'emo'], 'map': {'neu': 'neu', 'ang': 'emo', 'sad': 'emo', 'hap': 'emo', 'exc': 'emo'}}
    (user/'two.json').write_text(json.dumps(lm))
    r = cmer('run', '--corpus', tiny_corpus, '--out', out, '--steps', 'corpus', '-p', 'strict=false', '-p', 'label_map=two.json', cwd=user)
    assert r.returncode == 0, r.stdout + r.stderr
    m = load_manifest(out, 'corpus')
    assert m['params']['strict'] is False and m['params']['label_map'] == str(user/'two.json'), m['params']
    assert m['report']['classes'] == ['neu', 'emo']
    # the step's counts are printed under it and kept in chain.json
    step = json.loads((out/'chain.json').read_text())['steps'][0]
    counts = {k: v for k, v in m['report'].items() if k.startswith('n_') and isinstance(v, int) and not isinstance(v, bool)}
    assert counts and step['counts'] == counts and step['n_warnings'] == len(m['warnings']), step
    first = next(iter(counts))
    assert f'{first} {counts[first]}' in r.stdout and f"{step['n_warnings']} warning" in r.stdout, r.stdout
    assert 'removed 4 temporary files left by an interrupted run' in r.stdout, r.stdout
    assert not any(p.exists() for p in leftovers), [p for p in leftovers if p.exists()]
    assert not (out/'audio_aug'/'.wav.zz9y8x7w.tmp').exists()
    assert (out/'notebooks'/'01_corpus.ipynb').exists()


def test_plain_papermill_runs_a_step_notebook(tiny_corpus, tmp_path):
    "The notebooks carry a kernelspec, so papermill runs them without -k (README: plain papermill)."
    import nbformat
    for nb in sorted(NBS.glob('*.ipynb')):
        ks = json.loads(nb.read_text()).get('metadata', {}).get('kernelspec', {})
        assert ks.get('name') == 'python3' and ks.get('language') == 'python', f'{nb.name}: kernelspec {ks}'
    out = tmp_path/'out'
    r = subprocess.run([str(Path(sys.executable).parent/'papermill'), str(NBS/'01_corpus.ipynb'), str(tmp_path/'01.ipynb'),
                        '-p', 'corpus', str(tiny_corpus), '-p', 'out', str(out), '-p', 'label_map', '6class',
                        '--log-level', 'ERROR'], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_manifest(out, 'corpus')['params']['label_map'] == '6class'
    assert nbformat.read(str(tmp_path/'01.ipynb'), as_version=4).metadata['papermill']['parameters']['out'] == str(out)


def test_progress_line_on_a_terminal_only(tmp_path):
    "Issue 20 item 3: on a terminal the running step shows one updating line (items done / total, rate); into a pipe, none."
    import os, pty, select
    from cmer.chain import _toy_notebook
    nbs = tmp_path/'nbs'; nbs.mkdir(); (tmp_path/'corpus').mkdir()
    _toy_notebook(nbs/'01_slow.ipynb', "corpus = None\nout = None",
                  "import time\nfrom cmer.core import track\nfor _ in track(range(8), desc='items', show=False, interval=0.1): time.sleep(0.3)")
    args = ['run', '--corpus', tmp_path/'corpus', '--nbs', nbs, '--checks', 'never']
    master, slave = pty.openpty()
    p = subprocess.Popen([CMER, *map(str, args), '--out', str(tmp_path/'tty')], stdout=slave, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    seen = b''
    while True:
        r, _, _ = select.select([master], [], [], 120)
        if not r: break
        try: chunk = os.read(master, 4096)
        except OSError: break                                   # the program ended and closed the terminal
        if not chunk: break
        seen += chunk
    assert p.wait(60) == 0, p.stderr.read()
    out = seen.decode(errors='replace')
    frames = [f for f in out.split('\r') if f.startswith('[1/1] 01 slow: items:')]
    assert frames and any('/8 [' in f and ('it/s' in f or 's/it' in f) for f in frames), out[-1500:]
    assert '\x1b[K' in out and 'chain finished: 1 ran' in out
    r = cmer(*args, '--out', tmp_path/'pipe')
    assert r.returncode == 0 and '\r' not in r.stdout and 'items:' not in r.stdout and 'chain finished: 1 ran' in r.stdout, r.stdout
