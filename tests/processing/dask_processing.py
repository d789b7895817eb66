"""Helpers shared by the Processing tier's Dask tests (janja:prospectivity, janja:anomaly_score with a
scheduler): the cluster, started after QGIS, and an output file read back without its wall-time tag."""

import pytest
from dask_testing import local_cluster


@pytest.fixture(scope="module", name="cluster")  # named apart from the function: imported, it shadows nothing
def cluster_fixture(qgis_app):
    """dask_testing.local_cluster() after qgis_app: the workers are spawned with this sys.path, so they import
    the plugin as QGIS does (import this fixture into the test file)."""
    with local_cluster() as c:
        yield c


def read_output(path):
    """(band 1, tags without the wall-time tag, geotransform, projection) of a written GeoTIFF."""
    from osgeo import gdal

    ds = gdal.Open(str(path))
    tags = ds.GetMetadata()
    tags.pop("janja_stride_seconds", None)  # wall time, not a result
    out = (ds.GetRasterBand(1).ReadAsArray(), tags, ds.GetGeoTransform(), ds.GetProjection())
    ds = None
    return out
