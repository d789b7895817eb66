"""`make package`: a development zip that says so while placeholders remain; a release zip refused until then."""

import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import package  # noqa: E402


def test_dev_zip_names_its_placeholders_and_leaves_out_the_large_model(tmp_path):
    target, size, skip = package.build(tmp_path)
    assert target.name.endswith("-dev.zip") and size < package.MAX_PLUGIN_REPO_BYTES
    zf = zipfile.ZipFile(target)
    names = zf.namelist()
    assert "janja/resources/model_catalogue.json" in names and "janja/DEVELOPMENT_BUILD.txt" in names
    assert "janja/models/wa_au_inception.onnx" not in names and REPO / "models" / "wa_au_inception" in skip
    assert "janja/models/wa_anomaly/wa_anomaly_fanogan.onnx" in names
    meta = zf.read("janja/metadata.txt").decode()
    assert "version=0.1.0-dev" in meta and "DEVELOPMENT BUILD" in meta and "homepage=" in meta
    note = zf.read("janja/DEVELOPMENT_BUILD.txt").decode()
    assert all(mark in note for mark in package.placeholders())


def test_release_refused_while_placeholders_remain(tmp_path):
    repo = fake_repo(tmp_path, "https://example.org/janja-plugin", "PLACEHOLDER-no-server")
    with pytest.raises(SystemExit, match="(?s)refusing a release zip.*homepage=https://example.org.*base_url=PLACEHOLDER"):
        package.build(tmp_path / "dist", release=True, repo=repo)
    assert not (tmp_path / "dist").exists() or list((tmp_path / "dist").iterdir()) == []


def fake_repo(tmp_path, homepage, base_url):
    repo = tmp_path / "repo"
    (repo / "janja_plugin").mkdir(parents=True)
    (repo / "janja_plugin" / "__init__.py").write_text("")
    (repo / "__init__.py").write_text("")
    (repo / "models").mkdir()
    (repo / "resources" / "icons").mkdir(parents=True)
    shutil.copy(REPO / "resources" / "icons" / "janja.svg", repo / "resources" / "icons")
    (repo / "resources" / "model_catalogue.json").write_text(json.dumps({"base_url": base_url, "models": []}))
    text = (REPO / "metadata.txt").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(homepage|repository)=.*$", rf"\1={homepage}", text)
    text = re.sub(r"(?m)^tracker=.*$", f"tracker={homepage}/issues", text)
    text = re.sub(r"(?m)^email=.*$", "email=team@janja.test", text)
    (repo / "metadata.txt").write_text(text, encoding="utf-8")
    return repo


def test_release_builds_once_every_placeholder_is_replaced(tmp_path):
    repo = fake_repo(tmp_path, "https://github.com/janja/janja-plugin", "https://models.janja.test/v1")
    target, _, _ = package.build(tmp_path / "dist", release=True, repo=repo)
    assert target.name == "janja-0.1.0.zip"
    names = zipfile.ZipFile(target).namelist()
    assert "janja/DEVELOPMENT_BUILD.txt" not in names
    assert zipfile.ZipFile(target).read("janja/metadata.txt") == (repo / "metadata.txt").read_bytes()


def test_release_refuses_the_catalogue_placeholder_alone(tmp_path):
    repo = fake_repo(tmp_path, "https://github.com/janja/janja-plugin", "PLACEHOLDER-no-server")
    assert package.placeholders(repo) == [
        "resources/model_catalogue.json base_url=PLACEHOLDER-no-server (models not hosted)"]
    with pytest.raises(SystemExit):
        package.build(tmp_path / "dist", release=True, repo=repo)


def test_release_refuses_a_placeholder_address_in_the_code(tmp_path):
    repo = fake_repo(tmp_path, "https://github.com/janja/janja-plugin", "https://models.janja.test/v1")
    (repo / "janja_plugin" / "links.py").write_text('HELP = "https://example.org/help"\n')
    assert package.placeholders(repo) == ["janja_plugin/links.py holds an example.org/.com address"]


def test_metadata_has_what_the_plugin_repository_asks_for():
    general = package.read_metadata()["general"]
    for key in package.REQUIRED_METADATA:
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22" and (REPO / general["icon"]).is_file()
    assert "kriging" in general["tags"] and "prospectivity" in general["tags"]
