"""The provider loads through the plugin entry point and offers its algorithms."""

import html

from qgis.core import QgsApplication


def test_provider_registered_with_algorithms(qgis_app):
    provider = QgsApplication.processingRegistry().providerById("janja")
    assert provider is not None
    assert provider.name() == "Geochemical prospectivity"
    ids = {alg.id() for alg in provider.algorithms()}
    assert "janja:krige" in ids
    assert not provider.icon().isNull()


def test_every_algorithm_documents_itself(qgis_app):
    provider = QgsApplication.processingRegistry().providerById("janja")
    for alg in provider.algorithms():
        assert len(alg.shortHelpString()) > 200, alg.id()
        assert alg.displayName() and alg.group(), alg.id()
        for param in alg.parameterDefinitions():
            assert param.description(), f"{alg.id()}:{param.name()} has no description"


def test_initprocessing_twice_registers_once(qgis_app):
    before = len(QgsApplication.processingRegistry().providers())
    qgis_app.janja_plugin.initProcessing()
    assert len(QgsApplication.processingRegistry().providers()) == before


def test_help_survives_the_help_panel_and_cell_size_is_metres(qgis_app):
    """The dialog shows shortHelpString as HTML, one <p> per line (processing/gui/AlgorithmDialogBase.formatHelp)."""
    from qgis.PyQt.QtGui import QTextDocument

    provider = QgsApplication.processingRegistry().providerById("janja")
    for alg in provider.algorithms():
        shown = "".join(f"<p>{line}</p>" for line in alg.shortHelpString().split("\n"))
        doc = QTextDocument()
        doc.setHtml(shown)
        written = " ".join(html.unescape(alg.shortHelpString()).split())
        assert " ".join(doc.toPlainText().split()) == written, f"{alg.id()}: part of its help is lost in the panel"
    krige = QgsApplication.processingRegistry().createAlgorithmById("janja:krige")
    doc = QTextDocument()
    doc.setHtml("".join(f"<p>{line}</p>" for line in krige.shortHelpString().split("\n")))
    assert "'<0.5' and '>1000'" in doc.toPlainText()
    cell = krige.parameterDefinition("CELL_SIZE")
    assert cell.type() == "number" and "metres" in cell.description()


def test_a_toolbox_search_finds_every_algorithm_by_its_subject(qgis_app):
    """QGIS's toolbox filter matches the typed words against the display name and the tags."""
    registry = QgsApplication.processingRegistry()

    def found(word):
        return {a.id() for a in registry.providerById("janja").algorithms()
                if word.lower() in a.displayName().lower() or any(word.lower() in t.lower() for t in a.tags())}

    assert {"janja:krige", "janja:workflow"} <= found("kriging")
    assert "janja:krige" in found("interpolation") and "janja:krige" in found("variogram")
    assert "janja:krige" in found("geostatistics")
    assert {"janja:thresholds", "janja:fractal"} <= found("anomaly")
    assert "janja:prospectivity" in found("prospectivity") and "janja:evaluate" in found("ROC")
