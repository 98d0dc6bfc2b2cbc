"The README's Python API script (issue 19 item 12), run as a script on the tiny SYNTHETIC demo corpus: corpus -> features -> train -> evaluate -> a checkpoint -> cmer predict."
import json, re, subprocess, sys
from pathlib import Path

INDEX = Path(__file__).resolve().parent.parent/'nbs'/'index.ipynb'


def readme_script() -> str:
    "The ```python block of the README's 'Python API' section (from nbs/index.ipynb, the README's source)."
    cells = [''.join(c['source']) for c in json.loads(INDEX.read_text())['cells'] if c['cell_type'] == 'markdown']
    sec = next(c for c in cells if c.lstrip().startswith('## Python API'))
    return re.search(r'```python\n(.*?)```', sec, re.S)[1]


def test_readme_python_api_script_runs(tiny_corpus, tmp_path):
    src = readme_script()
    wav = sorted(Path(tiny_corpus).rglob('*.wav'))[0]
    for old, new in [("corpus, out = Path('data/demo'), Path('runs/api')", f"corpus, out = Path({str(tiny_corpus)!r}), Path({str(tmp_path/'api')!r})"),
                     ("'my_clip.mp4'", repr(str(wav)))]:
        assert src.count(old) == 1, old
        src = src.replace(old, new)
    (tmp_path/'script.py').write_text(src)
    r = subprocess.run([sys.executable, str(tmp_path/'script.py')], capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.search(r'UA 0\.\d{3} ± 0\.\d{3} over 5 folds', r.stdout), r.stdout[-2000:]
    ckpt = tmp_path/'api'/'my_model.pt'
    from cmer.model import load_checkpoint
    _, info = load_checkpoint(ckpt)
    assert set(info['meta']['featurizers']) == {'audio', 'text'}, info['meta']
    j = json.loads((tmp_path/'api'/'my_clip'/'segments.json').read_text())
    assert j['model'] == f'checkpoint {ckpt}' and j['modalities'] == ['audio', 'text'] and j['n_segments'] >= 1
    assert j['corpus_kind'] == 'synthetic' and j['segments'][0]['probabilities']['fused'] is not None
