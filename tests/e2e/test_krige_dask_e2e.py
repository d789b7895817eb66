"""The README's cluster recipe: qgis_process drives janja:krige on a Dask scheduler whose processes import the
plugin from PYTHONPATH (here a LocalCluster started with the plugin folder on sys.path); same files."""

import sys

import pytest
from testdata import PLUGIN_NAME, SAMPLE_DATA, qgis_environment, run_qgis_process

SAMPLES = f"{SAMPLE_DATA / 'wa_sample_data.gpkg'}|layername=samples"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qgis_environment(tmp_path_factory.mktemp("qp"))
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    return env


@pytest.fixture(scope="module")
def cluster(env):
    from distributed import LocalCluster

    sys.path.insert(0, env["QGIS_PLUGINPATH"])  # as PYTHONPATH=<plugins folder> dask scheduler / dask worker
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
            yield c
    finally:
        sys.path.remove(env["QGIS_PLUGINPATH"])


def krige(env, out, *extra):
    args = [f"INPUT={SAMPLES}", "FIELDS=Au_ppm", "FIELDS=Cu_ppm", "CELL_SIZE=1000", "NEIGHBOURS=32",
            f"OUTPUT={out / 'e.tif'}", f"VARIANCE={out / 'v.tif'}", *extra]
    return run_qgis_process(["run", "janja:krige", "--", *args], env, check=False)


def test_qgis_process_with_a_scheduler_writes_the_local_files(env, cluster, tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "dask").mkdir()
    local = krige(env, tmp_path / "local")
    remote = krige(env, tmp_path / "dask", f"SCHEDULER={cluster.scheduler_address}")
    assert local.returncode == 0 and remote.returncode == 0, (local.stderr + remote.stderr)[-3000:]
    for name in ("e.tif", "v.tif"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    import importlib

    from distributed import Client

    dk = importlib.import_module(f"{PLUGIN_NAME}.janja_plugin.core.geostatistics.distributed_kriging")
    with Client(cluster.scheduler_address, set_as_default=False) as client:  # the workers did the kriging
        assert sum(client.run(lambda: sum(dk._BUILDS.values())).values()) >= 2


def test_an_unreachable_scheduler_is_one_sentence_and_no_file(env, tmp_path):
    proc = krige(env, tmp_path, "SCHEDULER=tcp://127.0.0.1:9")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in text, text[-3000:]
    assert "Could not use the Dask scheduler at 'tcp://127.0.0.1:9'" in text
    assert not list(tmp_path.iterdir())
