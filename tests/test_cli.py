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
                           ('--labels', 'neu,ang', "parameter 'labels' is not declared by step 'corpus'")]:
        extra = ['--steps', '4'] if flag == '--labels' else []    # --labels sets step corpus's parameter: not selected here
        r = cmer('run', '--corpus', tiny_corpus, '--out', out, flag, val, *extra)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (flag, r.stderr)
    assert not out.exists(), 'nothing was started'


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
