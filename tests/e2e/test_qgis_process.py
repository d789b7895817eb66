"""qgis_process.bin as a user runs it: throwaway profile, plugin enabled, algorithms listed and run."""

import json

import pytest
from conftest import PLUGIN_NAME, SAMPLE_DATA, qgis_environment, run_qgis_process


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
    proc = run_qgis_process(["help", "janja:prepare_samples"], env)
    assert "censor" in proc.stdout.lower()


def test_run_prepare_samples_json(env, tmp_path):
    out_gpkg = tmp_path / "clean.gpkg"
    report = tmp_path / "report.html"
    proc = run_qgis_process(
        [
            "run", "janja:prepare_samples", "--json", "--",
            f"INPUT={SAMPLE_DATA / 'wa_sample_data.gpkg'}|layername=samples",
            "FIELDS=Au_ppm", "FIELDS=Ag_ppm",
            f"OUTPUT={out_gpkg}", f"REPORT={report}",
        ],
        env,
    )
    result = json.loads(proc.stdout)
    assert result["results"]["OUTPUT"].startswith(str(out_gpkg))
    assert out_gpkg.exists() and report.exists()
    assert result["results"]["MERGED_LOCATIONS"] > 0


def test_bad_field_fails_cleanly(env, tmp_path):
    proc = run_qgis_process(
        [
            "run", "janja:prepare_samples", "--",
            f"INPUT={SAMPLE_DATA / 'wa_sample_data.gpkg'}|layername=samples",
            "FIELDS=COMPSAMPID", f"OUTPUT={tmp_path / 'x.gpkg'}",
        ],
        env, check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "x.gpkg").exists()
