"""The package as a pip user gets it (issue 14 items 1, 3, 4): a wheel built from this checkout, installed into a
virtualenv of its own (the runtime requirements only, no dev packages), runs `cmer run --steps 1-4` on the tiny
SYNTHETIC demo corpus from a folder outside the repository.

The virtualenv is kept in `.venv/wheel-check/` (git-ignored) and re-created whenever the wheel's requirements or the
Python version change, so it only ever holds what installing cmer wheels put there; later runs replace just the
cmer package. `CMER_WHEEL_FRESH=1` always starts from an empty virtualenv."""
import hashlib, json, os, shutil, subprocess, sys, time, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = ROOT/'.venv'/'wheel-check'


def sh(*cmd, timeout=1800, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "`(wheel path, build log)`: the wheel of a copy of the checkout's sources (so no stale build/ folder leaks in)."
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp/'src'; (src/'nbs').mkdir(parents=True)
    for f in ('settings.ini', 'setup.py', 'README.md', 'LICENSE'): shutil.copy2(ROOT/f, src/f)
    shutil.copytree(ROOT/'cmer', src/'cmer', ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    for nb in ROOT.glob('nbs/*.ipynb'): shutil.copy2(nb, src/'nbs'/nb.name)
    r = sh(sys.executable, '-m', 'pip', 'wheel', '-v', '--no-deps', '--no-build-isolation', '-w', tmp/'dist', src, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return next((tmp/'dist').glob('cmer-*.whl')), r.stdout + r.stderr


def test_wheel_ships_assets_notebooks_licence_and_runtime_requirements(wheel):
    whl, log = wheel
    assert 'is absent from the `packages` configuration' not in log, 'setuptools: a folder of cmer is not declared as a package'
    with zipfile.ZipFile(whl) as z:
        names = {i.filename: i.file_size for i in z.infolist()}
        meta = z.read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
        lic = next((n for n in names if n.endswith('.dist-info/licenses/LICENSE')), None)
        assert lic and 'Apache License' in z.read(lic).decode() and 'Version 2.0, January 2004' in z.read(lic).decode()
    for p in (ROOT/'cmer'/'assets').iterdir():   # the shipped models, byte for byte the same size
        assert names.get(f'cmer/assets/{p.name}') == p.stat().st_size, f'{p.name} missing from the wheel'
    data = next(n.split('/')[0] for n in names if '.data/' in n)
    for nb in ROOT.glob('nbs/*.ipynb'): assert f'{data}/data/share/cmer/nbs/{nb.name}' in names, nb.name
    requires = [l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:') and 'extra ==' not in l]
    assert 'fastcore==1.12.47' in requires, 'each step notebook imports fastcore.test: a runtime requirement'
    assert 'nbdev' not in ' '.join(requires)
    assert 'example.org' not in meta and 'License-File: LICENSE' in meta


def _requires(whl:Path) -> list[str]:
    with zipfile.ZipFile(whl) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))).decode()
    return sorted(l for l in meta.splitlines() if l.startswith('Requires-Dist:'))


def wheel_env(whl:Path) -> tuple[Path, str]:
    "A virtualenv with `whl` installed with its requirements and nothing else; `(folder, how it was made)`."
    key = hashlib.sha256('\n'.join([sys.version, *_requires(whl)]).encode()).hexdigest()[:16]
    stamp = ENV/'.cmer-wheel-check'
    if os.environ.get('CMER_WHEEL_FRESH') or not stamp.exists() or stamp.read_text() != key:
        shutil.rmtree(ENV, ignore_errors=True)
        r = sh(sys.executable, '-m', 'venv', ENV)
        assert r.returncode == 0, r.stderr
        r = sh(ENV/'bin'/'python', '-m', 'pip', 'install', '-q', '--disable-pip-version-check', whl)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        stamp.write_text(key)
        return ENV, 'new virtualenv'
    r = sh(ENV/'bin'/'python', '-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--no-deps', '--force-reinstall', whl)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return ENV, 'cmer replaced in the kept virtualenv'


def test_installed_wheel_runs_steps_1_to_4_outside_the_repo(wheel, tiny_corpus, tmp_path):
    t0 = time.perf_counter()
    env, how = wheel_env(wheel[0])
    t_install = time.perf_counter() - t0
    py, cmer = env/'bin'/'python', env/'bin'/'cmer'
    run_env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'CMER_NBS')}
    run_env['PATH'] = f"{env/'bin'}{os.pathsep}{run_env.get('PATH', '')}"
    user = tmp_path/'user'; user.mkdir()
    # a pip user's environment: no dev packages, the notebooks found where the wheel put them, no checkout in sight
    r = sh(py, '-c', 'import importlib.util as u; from cmer.chain import nbs_dir; from cmer.core import repo_root; '
           'print(nbs_dir(), repo_root(), [m for m in ("nbdev", "pytest", "execnb") if u.find_spec(m)])', cwd=user, env=run_env)
    assert r.returncode == 0 and r.stdout.split() == [str(env/'share'/'cmer'/'nbs'), 'None', '[]'], r.stdout + r.stderr
    t1 = time.perf_counter()
    # --augment: steps 02 and 03 run too (by default nothing would read their augmented views: `not needed`)
    r = sh(cmer, 'run', '--corpus', tiny_corpus, '--out', user/'out', '--steps', '1-4', '--augment', cwd=user, env=run_env)
    t_run = time.perf_counter() - t1
    print(f"wheel check: {how} in {t_install:.0f} s; cmer run --steps 1-4 in {t_run:.0f} s")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    chain = json.loads((user/'out'/'chain.json').read_text())
    assert [(s['number'], s['status']) for s in chain['steps']] == [(1, 'ran'), (2, 'ran'), (3, 'ran'), (4, 'ran')], chain['steps']
    assert all((user/'out'/'notebooks'/n).exists() for n in ('01_corpus.ipynb', '02_text_aug.ipynb', '03_audio_aug.ipynb', '04_mfcc.ipynb'))
    assert 'n_utterances 40' in r.stdout, r.stdout
