"""qgis_process.bin as a user runs it: throwaway profile, plugin enabled, algorithms listed and run."""

import json

import pytest
from testdata import PLUGIN_NAME, SAMPLE_DATA, qgis_environment, run_qgis_process

SAMPLES = f"{SAMPLE_DATA / 'wa_sample_data.gpkg'}|layername=samples"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qgis_environment(tmp_path_factory.mktemp("qp"))
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    return env


def provider_algorithm_ids():
    from janja_plugin.processing.provider import algorithm_classes

    return {"janja:" + cls().name() for cls in algorithm_classes()}


def test_list_shows_every_janja_algorithm(env):
    proc = run_qgis_process(["list"], env)
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip().startswith("janja:")}
    expected = provider_algorithm_ids()
    assert expected, "the provider declares no algorithms"
    assert expected <= listed, f"missing from qgis_process list: {expected - listed}\n{proc.stderr[-3000:]}"


def test_help_describes_algorithm(env):
    proc = run_qgis_process(["help", "janja:krige"], env)
    assert "detection" in proc.stdout and "FIELDS" in proc.stdout
    # escaped for the dialogs' HTML help panel only: the terminal shows the text as written
    assert "'<0.5' and '>1000'" in proc.stdout and "&lt;" not in proc.stdout


def test_run_krige_json_on_bundled_survey(env, tmp_path):
    import rasterio

    proc = run_qgis_process(
        [
            "run", "janja:krige", "--json", "--", f"INPUT={SAMPLES}", "FIELDS=Au_ppm", "FIELDS=Cu_ppm",
            "CELL_SIZE=2000", f"OUTPUT={tmp_path / 'stack.tif'}", f"VARIANCE={tmp_path / 'var.tif'}",
            f"CV_TABLE={tmp_path / 'cv.gpkg'}", f"REPORT={tmp_path / 'report.html'}",
        ],
        env,
    )
    results = json.loads(proc.stdout)["results"]
    for key in ("OUTPUT", "VARIANCE", "CV_TABLE", "REPORT"):
        assert key in results
    with rasterio.open(tmp_path / "stack.tif") as src:
        assert src.descriptions == ("Au_ppm", "Cu_ppm")
        assert src.crs.to_epsg() == 32750  # geographic input projected to its UTM zone
        band = src.read(1, masked=True)
        assert band.count() > 0 and float(band.min()) > 0
    assert (tmp_path / "stack.qml").exists() and (tmp_path / "report.html").stat().st_size > 5000


def test_bad_field_fails_cleanly(env, tmp_path):
    proc = run_qgis_process(
        ["run", "janja:krige", "--", f"INPUT={SAMPLES}", "FIELDS=COMPSAMPID", f"OUTPUT={tmp_path / 'x.tif'}",
         f"VARIANCE={tmp_path / 'v.tif'}"],
        env, check=False,
    )
    assert proc.returncode == 1  # a clean failure, not a crash (139)
    assert "mostly text" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("*.tif"))


def test_package_zip_installs_and_loads(tmp_path):
    """`make package` output, unzipped into an empty profile's plugins folder, is loaded by qgis_process."""
    import subprocess
    import sys
    import zipfile

    from testdata import REPO

    subprocess.run([sys.executable, str(REPO / "tools" / "package.py"), "--out", str(tmp_path / "dist")],
                   check=True, capture_output=True)
    (archive,) = (tmp_path / "dist").glob("janja-*.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert "janja/metadata.txt" in names and "janja/__init__.py" in names
    assert not [n for n in names if n.startswith(("janja/tests/", "janja/.venv/", "janja/out/")) or "__pycache__" in n]
    env = qgis_environment(tmp_path / "q")
    profile_plugins = tmp_path / "q" / "profile" / "profiles" / "default" / "python" / "plugins"
    profile_plugins.mkdir(parents=True)
    zipfile.ZipFile(archive).extractall(profile_plugins)
    env["QGIS_PLUGINPATH"] = ""  # only the unzipped copy
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    listed = run_qgis_process(["list"], env).stdout
    assert all(alg_id in listed for alg_id in provider_algorithm_ids())


def test_install_plugin_links_and_enables(tmp_path):
    """`make install-plugin` into a fresh profile: qgis_process then lists the algorithms without QGIS_PLUGINPATH."""
    import subprocess
    import sys

    from testdata import REPO

    env = qgis_environment(tmp_path)
    env["QGIS_PLUGINPATH"] = ""
    subprocess.run([sys.executable, str(REPO / "tools" / "install_plugin.py")], env=env, check=True,
                   capture_output=True)
    link = tmp_path / "profile" / "profiles" / "default" / "python" / "plugins" / PLUGIN_NAME
    assert link.is_symlink() and link.resolve() == REPO
    listed = run_qgis_process(["list"], env).stdout
    assert all(alg_id in listed for alg_id in provider_algorithm_ids())
