"""Pure compute core: numpy/scipy, GDAL raster I/O (osgeo.gdal, in every QGIS), optional onnxruntime. No qgis."""
