"Step 04 in a papermill kernel with 2 worker processes (CMER_JOBS=2): the map sends the module's functions, never the kernel's copies with their caches (a loaded Whisper model does not pickle); the same features as one worker."
import os, subprocess
import numpy as np
from conftest import CMER


def test_audio_features_with_two_workers(tiny_corpus, tmp_path):
    from cmer.core import load_features
    feats = {}
    for jobs in (1, 2):
        out = tmp_path/f'out{jobs}'
        p = subprocess.run([CMER, 'run', '--corpus', str(tiny_corpus), '--out', str(out), '--steps', 'corpus', 'mfcc', '--checks', 'never',
                            '-p', 'audio_features=both'], capture_output=True, text=True, timeout=900, env=dict(os.environ, CMER_JOBS=str(jobs)))
        assert p.returncode == 0, p.stderr[-2000:]
        feats[jobs] = {k: load_features(out/'features'/f'{k}.npz') for k in ('mfcc', 'whisper')}
    for k in ('mfcc', 'whisper'):
        a, b = feats[1][k], feats[2][k]
        assert list(a.ids) == list(b.ids) and len(a.ids) == 40 and np.array_equal(a.data, b.data), k
