"""Dask helpers shared by the tiers' distributed tests, one copy instead of one per test file: a local cluster
of two single-thread worker processes, and a Python without the package 'distributed'. Imports neither QGIS nor
Dask until used (tests/conftest.py puts tests/ on sys.path, as for testdata)."""

import builtins
from contextlib import contextmanager

import pytest


@contextmanager
def local_cluster():
    """Two worker processes of one thread each: tiles really leave this process, and the run stays small."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module", name="cluster")  # named apart from the function: imported, it shadows nothing
def cluster_fixture():
    """local_cluster() for the tests of one module (import this fixture into the test file)."""
    with local_cluster() as c:
        yield c


def hide_distributed(monkeypatch):
    """From now on (undone by monkeypatch) `import distributed` fails, as on a computer without the package."""
    real = builtins.__import__

    def no_distributed(name, *args, **kw):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
