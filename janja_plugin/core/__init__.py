"""Pure compute core: numpy/scipy (and optional pykrige/onnxruntime/rasterio). Never imports qgis."""
