"""Dask: `parallel_map` on a 2-worker LocalCluster returns what the local map returns (results, failures, order),
and a real step (MFCC of the tiny SYNTHETIC demo corpus) writes the same feature file, byte for byte."""
import math, os, sys, shutil, time
import pytest
pytest.importorskip('dask.distributed')
import cloudpickle
from cmer.core import parallel_map, dask_client, _close_clients, features_dir, load_manifest

cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the workers cannot import this test module by name


def _pid(x):
    time.sleep(0.02)
    return os.getpid()


@pytest.fixture(scope='module')
def cluster():
    c = dask_client('local:2')
    yield c
    _close_clients()


def test_parallel_map_on_a_local_cluster_equals_the_local_map(cluster):
    assert len(cluster.scheduler_info()['workers']) == 2
    items = [4, -1, 0, 9, 'x', 2.25, -7] * 3
    local = parallel_map(math.sqrt, items, progress=False)
    assert len(local[1]) == 9 and local[1][0] == {'item': '-1', 'error': 'ValueError: math domain error'}
    assert parallel_map(math.sqrt, items, progress=False, scheduler='local:2') == local
    assert parallel_map(math.sqrt, items, n_jobs=2, progress=False) == local            # (joblib, for reference)
    os.environ['CMER_SCHEDULER'] = 'local:2'                                           # the same through the environment
    try:
        assert parallel_map(math.sqrt, items, progress=False) == local
        assert dask_client('local:2') is cluster                                       # started once per process
        pids = set(parallel_map(_pid, range(12), progress=False)[0])
    finally: del os.environ['CMER_SCHEDULER']
    assert os.getpid() not in pids and len(pids) == 2, pids                            # both workers, not this process
    assert parallel_map(math.sqrt, [], scheduler='local:2') == ([], [])


def test_unpicklable_function_and_unreachable_scheduler_say_so(cluster):
    import threading
    lock = threading.Lock()
    with pytest.raises(TypeError, match='cannot send'): parallel_map(lambda x: lock, [1], scheduler='local:2')
    with pytest.raises(ConnectionError, match='cannot reach the Dask scheduler at tcp://127.0.0.1:1'):
        dask_client('tcp://127.0.0.1:1', timeout=2)


def test_mfcc_step_on_the_cluster_writes_the_same_bytes(cluster, tiny_corpus, tmp_path):
    from cmer.corpus import corpus_step
    from cmer.mfcc import mfcc_step
    local, dist = tmp_path/'local', tmp_path/'dask'
    corpus_step(tiny_corpus, local)
    shutil.copytree(local/'corpus', dist/'corpus')
    m_local = mfcc_step(tiny_corpus, local)
    from dask.distributed import get_task_stream
    os.environ['CMER_SCHEDULER'] = 'local:2'
    try:
        with get_task_stream(cluster) as ts: m_dist = mfcc_step(tiny_corpus, dist)
    finally: del os.environ['CMER_SCHEDULER']
    n_wavs = sum(1 for _ in (tiny_corpus).rglob('*.wav'))
    assert len(ts.data) >= n_wavs > 0, (len(ts.data), n_wavs)                          # one task per utterance ran on the cluster
    a, b = features_dir(local)/'mfcc.npz', features_dir(dist)/'mfcc.npz'
    assert a.stat().st_size > 10_000
    assert a.read_bytes() == b.read_bytes()
    assert m_local['failures'] == m_dist['failures'] and m_local['warnings'] == m_dist['warnings']
