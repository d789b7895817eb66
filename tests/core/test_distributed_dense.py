"""The shared-trunk ("dense") mode of janja:prospectivity with its row bands on a Dask cluster (2 worker
processes) writes the files of this computer's streamed run, cell for cell (streamed_dense +
distributed_inference.stream_dense_bands)."""

import os
import time

import numpy as np
import pytest
from dask_testing import cluster_fixture  # noqa: F401 - the fixture `cluster`
from osgeo import gdal
from test_distributed_anomaly import worker_tmp  # noqa: F401 - the fixture
from test_prospectivity import write_stack_file
from test_streamed_dense import SIGMA, dense_model, gappy_field
from test_streamed_prospectivity import grid_of

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import distributed_kriging as dk
from janja_plugin.core.inference import dense
from janja_plugin.core.inference import distributed_inference as di
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.inference import streamed_prospectivity as sp
from janja_plugin.core.inference import windows as wn
from janja_plugin.core.reporting.report import HtmlReport


def files_of(folder):
    out = {}
    for name in ("p", "c", "l"):
        ds = gdal.Open(str(folder / f"{name}.tif"))
        tags = ds.GetMetadata()
        tags.pop("janja_stride_seconds", None)  # wall time, not a result
        out[name] = (ds.GetRasterBand(1).ReadAsArray().tobytes(), tags, ds.GetGeoTransform(), ds.GetProjection())
        ds = None
    return out


def worker_loads(cluster):
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        return client.run(lambda: dict(di._LOADS))


@pytest.mark.parametrize("sigma, masked, tile", [(None, False, (2, 5)), (None, True, (8, 8)),
                                                 (SIGMA, False, (2, 5)), (SIGMA, True, (2, 5)),
                                                 (SIGMA, True, (8, 8))])
def test_cluster_equals_local_cell_for_cell(tmp_path, cluster, monkeypatch, sigma, masked, tile):
    """Bands thinner (2 rows) and thicker (8) than the smoothing's halo (6 rows); the tile is the driver's."""
    monkeypatch.setattr(dense, "DEFAULT_TILE", tile)  # this process only: the workers must be sent it
    monkeypatch.setattr(sp, "READ_ROWS", 3)
    model = dense_model(tmp_path, sigma)
    stack = write_stack_file(tmp_path / "stack.tif", gappy_field(29, 31), grid=grid_of(29, 31))
    mask = None
    if masked:
        mask = np.zeros((29, 31), bool)
        mask[3:20, 2:25] = True
        mask[0, 0] = mask[28, 30] = True
    deposits = (np.array([3, 14, 15, 10]), np.array([3, 10, 15, 20]))
    settings = pr.ProspectivitySettings(threads=1) if masked else pr.ProspectivitySettings(threads=1, moderate=0.3,
                                                                                             high=0.37)
    runs = {}
    for tag, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        out = tmp_path / tag
        runs[tag] = sp.run_prospectivity_to_files(stack, model, out / "p.tif", out / "c.tif", out / "l.tif", settings,
                                                  mask=mask, deposit_cells=deposits, scheduler=scheduler)
    local, dask = runs["local"], runs["dask"]
    assert "shared trunk" in dask.stats.mode and dask.stats.mode == local.stats.mode
    assert files_of(tmp_path / "local") == files_of(tmp_path / "dask")  # values, tags, transform, CRS
    assert np.isfinite(gdal.Open(str(tmp_path / "dask" / "p.tif")).ReadAsArray()).sum() > 100
    assert local.targets == dask.targets and local.thresholds == dask.thresholds and local.notes == dask.notes
    assert local.map_summary()[:2] == dask.map_summary()[:2] and local.stride_error == dask.stride_error
    assert np.array_equal(local.map_summary()[2], dask.map_summary()[2])
    for key in ("n_windows", "n_windows_filled", "n_values_filled", "n_valid_cells"):
        assert getattr(local.stats, key) == getattr(dask.stats, key), key
    assert local.computed_on is None and dask.computed_on == f"the Dask cluster at {cluster.scheduler_address} " \
                                                            "(2 workers, 2 threads)"
    report = HtmlReport("r")
    pr.report_section(report, dask)
    report.write(tmp_path / "r.html")
    assert f"on the Dask cluster at {cluster.scheduler_address}" in (tmp_path / "r.html").read_text()
    key = di.make_dense_setup(mc.load_model(model, threads=1)).sha256
    loads = worker_loads(cluster)  # the workers ran the bands, each opening the trunk and head once
    assert any(key in v for v in loads.values())
    assert all(n == 1 for v in loads.values() for n in v.values())


def test_the_trunk_travels_once_not_with_each_band(tmp_path, cluster, monkeypatch):
    """The tasks carry stack rows only; the trunk and head files go to the workers once (scatter, broadcast)."""
    monkeypatch.setattr(dense, "DEFAULT_TILE", (2, 5))
    model = dense_model(tmp_path)
    stack = write_stack_file(tmp_path / "stack.tif", gappy_field(29, 31), grid=grid_of(29, 31))
    scattered, submitted = [], []
    real_scatter, real_submit = cluster_scatter_submit()

    def scatter(client, data, **kw):
        scattered.append(data)
        return real_scatter(client, data, **kw)

    def submit(client, fn, *args, **kw):
        submitted.append(args)
        return real_submit(client, fn, *args, **kw)

    from distributed import Client

    monkeypatch.setattr(Client, "scatter", scatter)
    monkeypatch.setattr(Client, "submit", submit)
    sp.run_prospectivity_to_files(stack, model, tmp_path / "p.tif", settings=pr.ProspectivitySettings(threads=1),
                                  scheduler=cluster.scheduler_address)
    assert len(scattered) == 1 and len(scattered[0]) == 1
    setup, = scattered[0].values()
    trunk = (tmp_path / "model" / "m_trunk.onnx").read_bytes()
    assert isinstance(setup, di.DenseSetup) and dict(setup.parts)["trunk.onnx"] == trunk
    assert len(submitted) == 15  # one task per band of 2 rows
    assert all(isinstance(task, di.BandTask) and task.block.shape[1] <= 2 + 2 * 3 + 2 for _, task in submitted)


def cluster_scatter_submit():
    from distributed import Client

    return Client.scatter, Client.submit


def test_cancel_cancels_the_bands_and_leaves_no_file(tmp_path, cluster, monkeypatch):
    monkeypatch.setattr(dense, "DEFAULT_TILE", (2, 8))
    model = dense_model(tmp_path, SIGMA)
    stack = write_stack_file(tmp_path / "stack.tif", gappy_field(60, 31), grid=grid_of(60, 31))
    seen = []

    def progress(f):
        seen.append(f)
        return f > 0.2

    out = tmp_path / "out"
    with pytest.raises(wn.Cancelled):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", out / "c.tif", out / "l.tif",
                                      settings=pr.ProspectivitySettings(threads=1), progress=progress,
                                      scheduler=cluster.scheduler_address)
    assert not out.exists() or list(out.iterdir()) == []
    assert 0.2 < seen[-1] < 0.6 and seen == sorted(seen)


def test_an_unreachable_or_malformed_scheduler_is_a_sentence_and_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(dk, "CONNECT_TIMEOUT", 2.0)
    model = dense_model(tmp_path, SIGMA)
    stack = write_stack_file(tmp_path / "stack.tif", gappy_field(9, 8), grid=grid_of(9, 8))
    out = tmp_path / "out"
    t = time.perf_counter()
    with pytest.raises(JanjaInputError, match="Could not use the Dask scheduler at 'tcp://127.0.0.1:9'.*"
                                              "leave the Dask scheduler empty to map on this computer's threads"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", out / "c.tif", scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t < 10
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(JanjaInputError, match="not an address of the form tcp://host:port"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", scheduler="http://cluster/")
    assert not out.exists() or list(out.iterdir()) == []


def test_an_empty_stack_is_refused_after_the_cluster_ran_it(tmp_path, cluster):
    """The end-of-run refusal comes from the bands' counts, as on this computer."""
    model = dense_model(tmp_path, SIGMA)
    empty = write_stack_file(tmp_path / "empty.tif", np.full((2, 9, 8), np.nan, np.float32), grid=grid_of(9, 8))
    out = tmp_path / "out"
    with pytest.raises(JanjaInputError, match="no cell where all of Au_ppb, As_ppm have values"):
        sp.run_prospectivity_to_files(empty, model, out / "p.tif", scheduler=cluster.scheduler_address)
    assert not out.exists() or not list(out.iterdir())


def test_workers_keep_no_trunk_copy_on_disk(tmp_path, cluster, worker_tmp):  # noqa: F811 - the fixture
    """The trunk and head are written to a private temporary folder, opened, and the folder removed."""
    folder, new_loads = worker_tmp
    model = dense_model(tmp_path, SIGMA)
    stack = write_stack_file(tmp_path / "stack.tif", gappy_field(29, 31), grid=grid_of(29, 31))
    sp.run_prospectivity_to_files(stack, model, tmp_path / "out" / "p.tif", settings=pr.ProspectivitySettings(
        threads=1), scheduler=cluster.scheduler_address)
    assert new_loads() >= 1  # the workers opened the trunk and head during this run ...
    left = [os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files]
    assert left == [] and list(folder.iterdir()) == []  # ... and left no copy of them


def test_a_card_naming_its_parts_in_another_folder_writes_nothing_outside_the_workers_temporary_folder(
        tmp_path, cluster, worker_tmp):  # noqa: F811 - the fixture
    """Parts in a folder beside the model's ("../parts/m_trunk.onnx" in the card) run on the cluster as here; the
    workers' copies have plain names inside their private folder, so nothing is written beside that folder."""
    import dataclasses

    folder, new_loads = worker_tmp
    built = dense_model(tmp_path)  # tmp_path/model/m.onnx, m_trunk.onnx, m_head.onnx
    (tmp_path / "parts").mkdir()
    for part in ("trunk", "head"):
        (tmp_path / "model" / f"m_{part}.onnx").rename(tmp_path / "parts" / f"m_{part}.onnx")
    stack = write_stack_file(tmp_path / "stack.tif", gappy_field(17, 13), grid=grid_of(17, 13))
    files = {}
    for tag, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        model = mc.load_model(built, threads=1)
        model.card = dataclasses.replace(model.card, dense={**model.card.dense, "trunk": "../parts/m_trunk.onnx",
                                                            "head": "../parts/m_head.onnx"})
        out = tmp_path / tag
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", out / "c.tif", out / "l.tif",
                                      pr.ProspectivitySettings(threads=1, moderate=0.3, high=0.37),
                                      scheduler=scheduler)
        files[tag] = files_of(out)
    assert files["local"] == files["dask"]
    assert new_loads() >= 1
    assert list(folder.iterdir()) == []  # no "parts" folder beside the workers' private temporary folders
