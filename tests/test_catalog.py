"""`kerasdrop list`: the catalogue names every public variant, and nothing that does not exist."""

import importlib.metadata
import subprocess
import sys

import keras
import pytest

import kerasdrop
import kerasdrop_cli
from kerasdrop import catalog, cli


def test_catalogue_lists_exactly_the_public_layers():
    public_layers = {
        name
        for name in kerasdrop.__all__
        if isinstance(getattr(kerasdrop, name), type) and issubclass(getattr(kerasdrop, name), keras.layers.Layer)
    }
    listed = catalog.public_names()
    assert public_layers <= listed, f"not in the catalogue: {sorted(public_layers - listed)}"
    missing = [name for name in listed if not _resolves(name)]
    assert not missing, f"the catalogue names what kerasdrop lacks: {missing}"


def _resolves(dotted_name):
    """Whether ``kerasdrop.<dotted_name>`` exists (``"acquisition.bald"`` included)."""
    value = kerasdrop
    for part in dotted_name.split("."):
        if not hasattr(value, part):
            return False
        value = getattr(value, part)
    return True


def test_list_command_prints_every_variant_with_its_paper(capsys):
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out
    for variant in catalog.VARIANTS:
        assert ", ".join(variant.names) in printed
        assert variant.paper in printed


def test_every_public_layer_is_in_the_cross_layer_checks():
    """The checks that run on every layer (precision, TensorFlow Lite) take their layers from one table."""
    from tests.layers.every_layer import CASES

    public_layers = {
        name
        for name in kerasdrop.layers.__all__
        # Cells run inside their layers; an alias (StochasticDepth) is the class of its own name's case.
        if not name.endswith("Cell") and getattr(kerasdrop, name).__name__ == name
    }
    covered = {case.id.split("-")[0] for case in CASES}
    assert covered == public_layers


def _run_entry(*args):
    """Runs the console command's entry module in a fresh interpreter; returns its output and the heavy modules it
    imported."""
    script = (
        "import sys, kerasdrop_cli\n"
        f"code = kerasdrop_cli.main({list(args)!r})\n"
        "top = {name.split('.')[0] for name in sys.modules}\n"
        "heavy = sorted(top & {'keras', 'tensorflow', 'jax', 'torch', 'kerasdrop'})\n"
        "print('imported:', heavy, 'code:', code)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return run.stdout, run.stderr


@pytest.mark.slow
def test_list_command_prints_the_catalogue_without_importing_keras_or_the_package():
    stdout, stderr = _run_entry("list")
    assert stdout == catalog.format_table() + "\nimported: [] code: 0\n"
    assert stderr == ""


@pytest.mark.slow
def test_version_needs_no_import_of_keras():
    stdout, _ = _run_entry("--version")
    assert stdout == f"kerasdrop {kerasdrop.__version__}\nimported: [] code: 0\n"


def test_console_command_runs_the_entry_module():
    (entry,) = [
        point for point in importlib.metadata.entry_points(group="console_scripts") if point.name == "kerasdrop"
    ]
    assert entry.value == "kerasdrop_cli:main"


def test_other_commands_go_through_the_package(capsys):
    assert kerasdrop_cli.main(["predict", "missing.keras", "missing.npy", "--output", "out.npz"]) == 2
    assert "missing.keras" in capsys.readouterr().err
