import sys
from pathlib import Path
import pytest

CMER = str(Path(sys.executable).parent/'cmer')   # the console script installed next to this interpreter


@pytest.fixture(scope='session')
def tiny_corpus():
    "The cached tiny demo corpus (5 sessions x 8 utterances, SYNTHETIC) that the notebooks use by default."
    from cmer.demo import tiny_paths
    return tiny_paths()[0]
