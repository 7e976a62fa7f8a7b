"""`kerasdrop list`: the catalogue names every public variant, and nothing that does not exist."""

import keras

import kerasdrop
from kerasdrop import catalog, cli


def test_catalogue_lists_exactly_the_public_layers():
    public_layers = {
        name
        for name in kerasdrop.__all__
        if isinstance(getattr(kerasdrop, name), type) and issubclass(getattr(kerasdrop, name), keras.layers.Layer)
    }
    listed = catalog.public_names()
    assert public_layers <= listed, f"not in the catalogue: {sorted(public_layers - listed)}"
    assert all(hasattr(kerasdrop, name) for name in listed), "the catalogue names something kerasdrop lacks"


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
