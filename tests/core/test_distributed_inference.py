"""Prospectivity row tiles on a Dask cluster (2 worker processes) give the files of this computer's run."""

import time

import numpy as np
import pytest
from dask_testing import cluster_fixture, hide_distributed  # noqa: F401 - the fixture `cluster`
from osgeo import gdal
from test_prospectivity import write_stack_file
from test_streamed_prospectivity import field, grid_of, write_model

from janja_plugin.core.errors import JanjaInputError, MissingDependencyError
from janja_plugin.core.geostatistics import distributed_kriging as dk
from janja_plugin.core.inference import distributed_inference as di
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.inference import streamed_prospectivity as sp
from janja_plugin.core.inference import windows as wn


def inputs(tmp_path, nrows=29, ncols=31):
    data = field(nrows, ncols)
    data[0, 20:24] = np.nan  # an all-nodata tile (tile_rows=4)
    return write_stack_file(tmp_path / "stack.tif", data, grid=grid_of(nrows, ncols)), write_model(tmp_path)


def files_of(folder):
    out = {}
    for name in ("p", "c", "l"):
        ds = gdal.Open(str(folder / f"{name}.tif"))
        tags = ds.GetMetadata()
        tags.pop("janja_stride_seconds", None)
        out[name] = (ds.GetRasterBand(1).ReadAsArray().tobytes(), tags, ds.GetGeoTransform(), ds.GetProjection())
        ds = None
    return out


@pytest.mark.parametrize("stride, masked", [(1, False), (2, True), (3, False), (7, True)])
def test_cluster_equals_local_cell_for_cell(tmp_path, cluster, monkeypatch, stride, masked):
    monkeypatch.setattr(sp, "READ_ROWS", 3)
    stack, model = inputs(tmp_path)
    mask = None
    if masked:
        mask = np.ones((29, 31), bool)
        mask[:5, :9] = False
    deposits = (np.array([3, 14, 25]), np.array([3, 15, 25]))
    settings = pr.ProspectivitySettings(threads=1, stride=stride, tile_rows=4, batch_size=8, stride_sample=60)
    runs = {}
    for tag, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        out = tmp_path / tag
        runs[tag] = sp.run_prospectivity_to_files(stack, model, out / "p.tif", out / "c.tif", out / "l.tif", settings,
                                                  mask=mask, deposit_cells=deposits, scheduler=scheduler)
    assert files_of(tmp_path / "local") == files_of(tmp_path / "dask")  # values, tags, transform, CRS
    local, dask = runs["local"], runs["dask"]
    assert local.targets == dask.targets and local.thresholds == dask.thresholds and local.notes == dask.notes
    for key in ("n_windows", "n_windows_filled", "n_values_filled", "n_valid_cells", "n_interpolated"):
        assert getattr(local.stats, key) == getattr(dask.stats, key), key
    if stride > 1:
        dask.stride_error.seconds = local.stride_error.seconds
        assert local.stride_error == dask.stride_error
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:  # the workers did the tiles
        loads = client.run(lambda: dict(di._LOADS))
    assert sum(sum(v.values()) for v in loads.values()) >= 1
    assert all(n == 1 for v in loads.values() for n in v.values())  # each worker opened the model once


def test_cancel_cancels_the_tasks_and_leaves_no_file(tmp_path, cluster):
    stack, model = inputs(tmp_path, 60, 31)
    seen = []

    def progress(f):
        seen.append(f)
        return f > 0.2

    out = tmp_path / "out"
    with pytest.raises(wn.Cancelled):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", out / "c.tif",
                                      settings=pr.ProspectivitySettings(threads=1, tile_rows=3),
                                      progress=progress, scheduler=cluster.scheduler_address)
    assert not out.exists() or list(out.iterdir()) == []
    assert 0.2 < seen[-1] < 0.6 and seen == sorted(seen)


def test_an_unreachable_scheduler_is_a_sentence_within_seconds(tmp_path, monkeypatch):
    monkeypatch.setattr(dk, "CONNECT_TIMEOUT", 2.0)
    stack, model = inputs(tmp_path)
    t = time.perf_counter()
    out = tmp_path / "out"
    with pytest.raises(JanjaInputError, match="Could not use the Dask scheduler at 'tcp://127.0.0.1:9'.*"
                                              "leave the Dask scheduler empty to map on this computer's threads"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t < 10
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(JanjaInputError, match="not an address of the form tcp://host:port"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", scheduler="http://cluster/")


def test_without_distributed_the_sentence_says_what_to_install(tmp_path, monkeypatch):
    hide_distributed(monkeypatch)
    stack, model = inputs(tmp_path)
    with pytest.raises(MissingDependencyError, match="Mapping prospectivity on the Dask cluster at tcp://h:1 needs "
                                                     "the Python package 'distributed'.*to map on this computer"):
        sp.run_prospectivity_to_files(stack, model, tmp_path / "p.tif", scheduler="tcp://h:1")
    assert not (tmp_path / "p.tif").exists()


def test_an_edited_card_beside_the_same_model_file_is_another_model_for_the_workers(tmp_path):
    """Workers cache opened models by this key: a card edited beside the same .onnx must not reuse the old one."""
    from types import SimpleNamespace

    from janja_plugin.core.inference import model_card as mc

    _, path = inputs(tmp_path)
    card = mc.card_path_for(path)
    assert card.is_file()
    first = di.make_model_setup(SimpleNamespace(path=path))
    card.write_text(card.read_text().replace('"name": "', '"name": "edited '), encoding="utf-8")
    second = di.make_model_setup(SimpleNamespace(path=path))
    assert first.onnx == second.onnx and first.sha256 != second.sha256
