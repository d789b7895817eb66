"""Anomaly-score row tiles on a Dask cluster (2 worker processes) give the files of this computer's run, and
neither job leaves model copies on the workers' disks."""

import html
import os
import tempfile
import time

import numpy as np
import pytest
from dask_testing import cluster_fixture, hide_distributed  # noqa: F401 - the fixture `cluster`
from test_prospectivity import write_stack_file
from test_streamed_anomaly import cell_xy, write_model
from test_streamed_prospectivity import field, grid_of, read_file

from janja_plugin.core.errors import JanjaInputError, MissingDependencyError
from janja_plugin.core.geostatistics import distributed_kriging as dk
from janja_plugin.core.inference import anomaly_score as an
from janja_plugin.core.inference import distributed_inference as di
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.inference import streamed_anomaly as sa
from janja_plugin.core.inference import streamed_prospectivity as sp
from janja_plugin.core.inference import windows as wn
from janja_plugin.core.reporting.report import HtmlReport


def inputs(tmp_path, nrows=29, ncols=31):
    data = field(nrows, ncols)
    data[0, 20:24] = np.nan  # rows 20-23: with tile_rows=4, a tile that is all nodata
    data[1, 3, 7] = np.nan
    grid = grid_of(nrows, ncols)
    return write_stack_file(tmp_path / "stack.tif", data, grid=grid), write_model(tmp_path), grid


def files_of(result):
    out = {}
    for name in ("score", "classes"):
        f = read_file(result.paths[name])
        f["tags"].pop("janja_stride_seconds", None)  # wall time, not a result
        out[name] = (f["data"].tobytes(), f["nodata"], f["transform"], f["crs"], f["tags"], f["size"])
    return out


def report_of(result):
    result.seconds = result.stats.seconds = 1.0
    if result.stride_error is not None:
        result.stride_error.seconds = 1.0
    report = HtmlReport("test")
    an.report_section(report, result)
    return report.html()


@pytest.mark.parametrize("stride", [1, 3])
def test_cluster_equals_local_cell_for_cell(tmp_path, cluster, monkeypatch, stride):
    monkeypatch.setattr(sp, "READ_ROWS", 3)
    stack, model, grid = inputs(tmp_path)
    mask = np.ones((29, 31), bool)
    mask[:4, :10] = False
    xy = cell_xy(grid, np.array([5, 3, 21, 2, 28, 14]), np.array([7, 3, 5, 4, 30, 15]))
    settings = an.AnomalySettings(threads=1, stride=stride, tile_rows=4, batch_size=16, stride_sample=50,
                                  percentiles=(33.3, 77.7, 95.5))
    runs = {}
    for tag, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        out = tmp_path / tag
        runs[tag] = sa.run_anomaly_score_to_files(stack, model, out / "s.tif", out / "c.tif", settings, mask=mask,
                                                  sample_xy=xy, scheduler=scheduler)
    local, dask = runs["local"], runs["dask"]
    assert files_of(local) == files_of(dask)  # values, nodata, transform, CRS, tags (stride check included)
    scored = np.isfinite(local.sample_scores)
    assert local.stats.n_valid_cells < 29 * 31 and len(set(local.sample_classes()[scored])) > 1
    assert np.array_equal(np.asarray(local.breaks), np.asarray(dask.breaks))
    assert np.array_equal(local.sample_scores, dask.sample_scores, equal_nan=True)
    assert local.notes == dask.notes and (local.constant, local.spread) == (dask.constant, dask.spread)
    for key in ("n_windows", "n_windows_filled", "n_values_filled", "n_valid_cells", "n_interpolated"):
        assert getattr(local.stats, key) == getattr(dask.stats, key), key
    for a, b in zip(local.map_summary(), dask.map_summary()):
        assert np.array_equal(a, b)
    if stride > 1:
        assert local.stride_error.n_windows > 50 and local.stride_error.n_top > 0
        dask.stride_error.seconds = local.stride_error.seconds
        assert local.stride_error == dask.stride_error
    # the report says where the tiles ran, and nothing else differs
    assert local.computed_on == "this computer's threads"
    assert dask.computed_on == f"the Dask cluster at {cluster.scheduler_address} (2 workers, 2 threads)"
    assert f" on {dask.computed_on} in 1.0 s" in report_of(dask)
    assert report_of(local) == report_of(dask).replace(dask.computed_on, html.escape(local.computed_on))
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:  # the workers did the tiles
        loads = client.run(lambda: sum(di._LOADS.values()))
    assert sum(loads.values()) >= 1


def test_cancel_on_the_cluster_leaves_no_file(tmp_path, cluster):
    stack, model, _ = inputs(tmp_path, 60, 31)
    seen = []

    def progress(f):
        seen.append(f)
        return f > 0.2

    out = tmp_path / "out"
    with pytest.raises(wn.Cancelled, match="anomaly-score run was cancelled"):
        sa.run_anomaly_score_to_files(stack, model, out / "s.tif", out / "c.tif",
                                      settings=an.AnomalySettings(threads=1, tile_rows=3), progress=progress,
                                      scheduler=cluster.scheduler_address)
    assert not out.exists() or list(out.iterdir()) == []
    assert 0.2 < seen[-1] < 0.6 and seen == sorted(seen)  # stopped in the map, on the cluster's tiles


def test_an_unreachable_or_malformed_scheduler_is_a_sentence_and_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(dk, "CONNECT_TIMEOUT", 2.0)
    stack, model, _ = inputs(tmp_path)
    out = tmp_path / "out"
    t = time.perf_counter()
    with pytest.raises(JanjaInputError, match="Could not use the Dask scheduler at 'tcp://127.0.0.1:9'.*"
                                              "leave the Dask scheduler empty to map on this computer's threads"):
        sa.run_anomaly_score_to_files(stack, model, out / "s.tif", out / "c.tif", scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t < 10
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(JanjaInputError, match="'http://cluster/' .not an address of the form tcp://host:port"):
        sa.run_anomaly_score_to_files(stack, model, out / "s.tif", out / "c.tif", scheduler="http://cluster/")
    assert not out.exists() or list(out.iterdir()) == []


def test_without_distributed_a_scheduler_is_a_sentence_and_none_works(tmp_path, monkeypatch):
    hide_distributed(monkeypatch)
    stack, model, _ = inputs(tmp_path)
    with pytest.raises(MissingDependencyError, match="Scoring anomalies on the Dask cluster at tcp://h:1 needs the "
                                                     "Python package 'distributed'.*to map on this computer"):
        sa.run_anomaly_score_to_files(stack, model, tmp_path / "s.tif", scheduler="tcp://h:1")
    assert not (tmp_path / "s.tif").exists()
    for scheduler in (None, "", "  "):  # no scheduler: this computer's threads, without distributed
        result = sa.run_anomaly_score_to_files(stack, model, tmp_path / "s.tif", scheduler=scheduler,
                                               settings=an.AnomalySettings(threads=1))
        assert result.computed_on == "this computer's threads" and (tmp_path / "s.tif").is_file()


@pytest.fixture
def worker_tmp(cluster, tmp_path):
    """The workers' temporary folder set to an empty folder of this test, and their model caches emptied (so
    this run opens the model); restored afterwards."""
    from distributed import Client

    folder = tmp_path / "worker_tmp"
    folder.mkdir()

    def point_to(path):
        di._MODELS.clear()
        tempfile.tempdir = path

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        client.run(point_to, str(folder))
        before = sum(sum(v.values()) for v in client.run(lambda: dict(di._LOADS)).values())
        yield folder, lambda: sum(sum(v.values()) for v in client.run(lambda: dict(di._LOADS)).values()) - before
        client.run(point_to, None)


@pytest.mark.parametrize("job", ["anomaly_score", "prospectivity"])
def test_workers_keep_no_model_copy_on_disk(tmp_path, cluster, worker_tmp, job):
    folder, new_loads = worker_tmp
    data = field(29, 31)
    stack = write_stack_file(tmp_path / "stack.tif", data, grid=grid_of(29, 31))
    out = tmp_path / "out"
    if job == "anomaly_score":
        sa.run_anomaly_score_to_files(stack, write_model(tmp_path), out / "s.tif", settings=an.AnomalySettings(
            threads=1, tile_rows=4), scheduler=cluster.scheduler_address)
    else:
        from test_streamed_prospectivity import write_model as classifier

        sp.run_prospectivity_to_files(stack, classifier(tmp_path), out / "p.tif", settings=pr.ProspectivitySettings(
            threads=1, tile_rows=4), scheduler=cluster.scheduler_address)
    assert new_loads() >= 1  # the workers opened the model during this run ...
    left = [os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files]
    assert left == []  # ... and left no copy of it (was <tmp>/janja-models/<sha256>.onnx)
    assert list(folder.iterdir()) == []
