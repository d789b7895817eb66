"""Domain errors carrying a sentence a geologist can act on.

The Processing glue turns every `JanjaInputError` into a `QgsProcessingException` with the same
text, so the core never needs to know about QGIS.
"""


class JanjaInputError(ValueError):
    """Bad input: the message says what is wrong, where, and what to do."""


class MissingDependencyError(ImportError):
    """An optional Python package is not installed; the message names the install command."""


def require(module_name: str, purpose: str):
    """Import an optional heavy package on demand, or explain how to install it."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - exercised only on machines without it
        raise MissingDependencyError(
            f"The Python package '{module_name}' is needed for {purpose} but is not installed "
            f"for QGIS's Python: click Plugins ▸ Janja ▸ Install dependencies (no terminal needed), then run "
            f"again (a development checkout: run 'make setup')."
        ) from exc
