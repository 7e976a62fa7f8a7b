"""The ``kerasdrop`` console command, kept outside the ``kerasdrop`` package so that ``kerasdrop list`` prints at once.

Importing the package imports Keras and its backend (seconds, and TensorFlow's start-up lines): it has to, because it
registers its layers with Keras on import, which is what ``keras.saving.load_model`` needs after ``import kerasdrop``.
``kerasdrop list`` needs only the catalogue, plain data with no imports, so it is read from the package's
``catalog.py`` without importing the package; ``kerasdrop --version`` reads the installed version. Every other
command runs `kerasdrop.cli.main`.
"""

import importlib.metadata
import importlib.util
import os
import sys


def load_catalog():
    """The module ``kerasdrop/catalog.py``, loaded from its file: the ``kerasdrop`` package is not imported."""
    package = importlib.util.find_spec("kerasdrop")
    path = os.path.join(package.submodule_search_locations[0], "catalog.py")
    spec = importlib.util.spec_from_file_location("kerasdrop_catalog", path)
    catalog = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(catalog)
    return catalog


def _installed_version():
    """The installed distribution's version (the package's ``__version__``), or None when run from a source tree."""
    try:
        return importlib.metadata.version("kerasdrop")
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["list"]:
        print(load_catalog().format_table())
        return 0
    version = _installed_version() if argv == ["--version"] else None
    if version:
        print(f"kerasdrop {version}")
        return 0
    from kerasdrop.cli import main as run_command

    return run_command(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
