"""The models shipped in saved_models/ still load with plain Keras and give the outputs recorded when they were made.

Each ``<name>.keras`` was written by ``examples/make_saved_models.py`` together with ``<name>.npz``: a fixed input,
the expected deterministic output, the classes of every layer, learned attributes, and MC dropout statistics. A
failure here means files that users already saved no longer load, or no longer compute the same thing. Regenerate
the files (``python examples/make_saved_models.py``) only when that change is intended. These tests only read.
"""

import json
import math
import pathlib
import zipfile

import keras
import numpy as np
import pytest

import kerasdrop
from tests import utils

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAVED = ROOT / "saved_models"
NAMES = (
    "standard_mlp",
    "weight_noise_mlp",
    "pruning_mlp",
    "compressed_mlp",
    "conv_cnn",
    "recurrent_rnn",
    "mc_mlp",
)
REGENERATE = (
    "if the change is intended, regenerate with `python examples/make_saved_models.py` (`--mc-only` when only "
    "MCDropout's random streams changed)"
)
OUTPUT_ATOL = 1e-5
MC_SIGMAS = 5.0


@pytest.fixture(autouse=True, scope="module")
def _float32_matmuls():
    """The expected outputs are float32 products; GPUs' default TF32 products are about 1e-3 off, so turn them off."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    enabled = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(enabled)


@pytest.fixture(scope="module")
def generator():
    """examples/make_saved_models.py, for its layer listing and its deterministic prediction."""
    return utils.load_example("make_saved_models")


def load(name):
    """The shipped model (no custom_objects, safe mode) and its recorded arrays."""
    model = keras.saving.load_model(SAVED / f"{name}.keras")
    with np.load(SAVED / f"{name}.npz", allow_pickle=False) as arrays:
        return model, dict(arrays)


def test_every_shipped_model_has_its_record():
    for name in NAMES:
        assert (SAVED / f"{name}.keras").is_file() and (SAVED / f"{name}.npz").is_file(), name
    assert sorted(path.stem for path in SAVED.glob("*.npz")) == sorted(NAMES)
    assert (SAVED / "README.md").is_file()


def test_shipped_models_cover_every_kerasdrop_layer():
    shipped = set()
    for name in NAMES:
        with np.load(SAVED / f"{name}.npz", allow_pickle=False) as arrays:
            shipped |= {str(layer) for layer in arrays["layers"]}
    missing = sorted(name for name in kerasdrop.layers.__all__ if f"kerasdrop>{name}" not in shipped)
    assert not missing, f"no shipped model holds {missing}: add them to examples/make_saved_models.py and regenerate"


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_loads_with_its_layers_and_outputs(name, generator):
    model, arrays = load(name)
    assert generator.layer_names(model) == [str(layer) for layer in arrays["layers"]], REGENERATE
    output = generator.deterministic_output(model, arrays["x"])
    assert output.shape == arrays["expected"].shape and np.all(np.isfinite(output))
    np.testing.assert_allclose(output, arrays["expected"], rtol=0, atol=OUTPUT_ATOL, err_msg=REGENERATE)
    attributes = [key for key in arrays if key.startswith("attribute__")]
    for key in attributes:
        _, layer_name, attribute = key.split("__")
        value = generator.attribute_value(model, layer_name, attribute)
        np.testing.assert_allclose(value, arrays[key], rtol=0, atol=1e-6, err_msg=f"{key}; {REGENERATE}")
    assert bool(attributes) == (name in ("weight_noise_mlp", "pruning_mlp", "conv_cnn"))


@pytest.mark.parametrize("name", [name for name in NAMES if name != "compressed_mlp"])
def test_shipped_model_mc_statistics(name):
    """The MC mean over T samples agrees with the recorded one: bit for bit while the random streams are unchanged,
    and within 5 standard errors of a difference of two independent means (sqrt(2) sigma / sqrt(T)) otherwise."""
    model, arrays = load(name)
    samples, seed = int(arrays["mc_samples"]), int(arrays["mc_seed"])
    result = kerasdrop.MCDropout(model, samples=samples, seed=seed).predict(arrays["x"], verbose=0)
    bound = MC_SIGMAS * math.sqrt(2.0) * arrays["mc_std"] / math.sqrt(samples) + OUTPUT_ATOL
    gap = np.abs(result.mean - arrays["mc_mean"])
    assert np.all(gap <= bound), f"largest excess {np.max(gap - bound)}; {REGENERATE}"
    np.testing.assert_allclose(result.std, arrays["mc_std"], rtol=0.5, atol=1e-3)
    assert np.max(arrays["mc_std"]) > 1e-3  # the recorded samples really varied


def test_mc_model_stays_stochastic_after_loading(generator):
    model, arrays = load("mc_mlp")
    stochastic = [layer for layer in model.layers if isinstance(layer, (kerasdrop.Dropout, kerasdrop.GaussianDropout))]
    assert len(stochastic) == 2 and all(layer.mc for layer in stochastic)
    first, second = (model.predict(arrays["x"], verbose=0) for _ in range(2))
    assert np.max(np.abs(first - second)) > 1e-3
    assert np.max(np.abs(first - arrays["expected"])) > 1e-3
    generator.deterministic_output(model, arrays["x"])
    assert all(layer.mc for layer in stochastic)  # the deterministic prediction restored Monte Carlo mode


def test_compressed_model_is_plain_keras_and_matches_its_source():
    with zipfile.ZipFile(SAVED / "compressed_mlp.keras") as archive:
        assert "kerasdrop" not in archive.read("config.json").decode()
    model, arrays = load("compressed_mlp")
    assert [type(layer) for layer in model.layers] == [keras.layers.Dense, keras.layers.ReLU] * 2 + [keras.layers.Dense]
    _, source = load("pruning_mlp")
    np.testing.assert_array_equal(arrays["x"], source["x"])
    np.testing.assert_allclose(arrays["expected"], source["expected"], rtol=0, atol=1e-5)
    # Structured pruning switched off some hidden units; compress removed them.
    units = [layer.units for layer in model.layers[::2]]
    assert units[-1] == 10 and all(0 < size <= 16 for size in units[:-1]) and sum(units[:-1]) < 32


def test_shipped_files_are_small():
    total = sum(path.stat().st_size for name in NAMES for path in SAVED.glob(f"{name}.*"))
    assert total < 450_000, f"{total:,} bytes"
    for name in NAMES:
        config = json.loads(zipfile.ZipFile(SAVED / f"{name}.keras").read("config.json"))
        assert not config.get("compile_config"), name  # saved without its optimizer
