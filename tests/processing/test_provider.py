"""The provider loads through the plugin entry point and offers its algorithms."""

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
