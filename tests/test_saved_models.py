"""The models shipped in saved_models/ still load with plain Keras and give the outputs recorded when they were made.

Each ``<name>.keras`` was written by ``examples/make_saved_models.py`` together with ``<name>.npz``: a fixed input,
the expected deterministic output, the classes of every layer, learned attributes, and MC dropout statistics. A
failure here means files that users already saved no longer load, or no longer compute the same thing. Regenerate
the files (``python examples/make_saved_models.py``) only when that change is intended. These tests only read.
"""

import json
import pathlib
import zipfile

import keras
import numpy as np
import pytest

import kerasdrop
from tests import backend, utils

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAVED = ROOT / "saved_models"
NAMES = (
    "standard_mlp",
    "weight_noise_mlp",
    "pruning_mlp",
    "compressed_mlp",
    "conv_cnn",
    "residual_cnn",
    "recurrent_rnn",
    "zoneout_rnn",
    "mc_mlp",
)
REGENERATE = (
    "if the change is intended, regenerate with `python examples/make_saved_models.py` (`--mc-only` when only "
    "MCDropout's random streams changed)"
)
OUTPUT_ATOL = 1e-5
MC_SIGMAS = 5.0


@pytest.fixture(autouse=True, scope="module")
def _float32_products():
    """The expected outputs are float32 products. On GPUs, TensorFlow and JAX compute float32 matrix products in TF32
    by default, and PyTorch its cuDNN convolutions and recurrences, about 1e-3 off: turned off here (no effect on
    CPUs)."""
    if backend.BACKEND == "tensorflow":
        import tensorflow as tf

        enabled = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        yield
        tf.config.experimental.enable_tensor_float_32_execution(enabled)
    elif backend.BACKEND == "jax":
        import jax

        precision = jax.config.jax_default_matmul_precision
        jax.config.update("jax_default_matmul_precision", "highest")
        yield
        jax.config.update("jax_default_matmul_precision", precision)
    else:
        import torch

        flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        yield
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


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
    # By registered name: an alias (StochasticDepth is DropPath) is covered by its class.
    registered = {name: keras.saving.get_registered_name(getattr(kerasdrop, name)) for name in kerasdrop.layers.__all__}
    missing = sorted(name for name, registered_name in registered.items() if registered_name not in shipped)
    assert not missing, f"no shipped model holds {missing}: add them to examples/make_saved_models.py and regenerate"


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in NAMES if name != "compressed_mlp"])
def test_shipped_model_mc_statistics(name):
    """The MC samples of the shipped models: the recorded draws on TensorFlow, the same distributions elsewhere.

    On TensorFlow, where the files were made, MCDropout draws the recorded samples again: mean and std equal the
    recorded ones to float32 rounding, so a change of the random streams fails here (regenerate with ``--mc-only``).

    On every backend (JAX and PyTorch draw other streams), entry by entry, the mean and the variance of the T fresh
    samples agree with the recorded ones within 5 standard errors of the difference of two independent estimates.
    The file keeps the recorded mean and std only, so the standard errors come from the fresh samples:
    ``sqrt((s_a^2 + s_b^2) / T)`` for the means, and for the variances ``sqrt((m4_a - s_a^4) / T)`` plus the same
    term for the recorded variance with the fresh samples' kurtosis ``m4_a / s_a^4``. Softmax outputs under dropout
    are heavy-tailed (kurtosis up to about 200: now and then a sample far from the rest), so the variance of 200
    samples is much less precise than a Gaussian's: a fixed relative tolerance on the std fails for two independent
    sets of samples (on TensorFlow too, with another seed). With 200 samples this check sees a dropout rate changed
    by a factor 1.6, not one changed by 1.3: the TensorFlow check above is the sharp one.
    """
    model, arrays = load(name)
    samples, seed = int(arrays["mc_samples"]), int(arrays["mc_seed"])
    result = kerasdrop.MCDropout(model, samples=samples, seed=seed).predict(arrays["x"], verbose=0, keep_samples=True)
    if backend.BACKEND == "tensorflow":
        np.testing.assert_allclose(result.mean, arrays["mc_mean"], rtol=0, atol=OUTPUT_ATOL, err_msg=REGENERATE)
        np.testing.assert_allclose(result.std, arrays["mc_std"], rtol=0, atol=OUTPUT_ATOL, err_msg=REGENERATE)
    draws = np.asarray(result.samples, "float64")
    assert draws.shape == (samples, *arrays["mc_mean"].shape)
    np.testing.assert_allclose(draws.mean(axis=0), result.mean, rtol=1e-5, atol=1e-7)
    mean, variance = draws.mean(axis=0), draws.var(axis=0)
    fourth = ((draws - mean) ** 4).mean(axis=0)
    recorded_mean, recorded_variance = arrays["mc_mean"].astype("float64"), arrays["mc_std"].astype("float64") ** 2
    kurtosis = np.divide(fourth, variance**2, out=np.zeros_like(fourth), where=variance > 0)
    mean_error = np.sqrt((variance + recorded_variance) / samples)
    spread = np.maximum(fourth - variance**2, 0.0) + np.maximum(kurtosis - 1.0, 0.0) * recorded_variance**2
    variance_error = np.sqrt(spread / samples)
    # Outputs OUTPUT_ATOL off move a mean by as much, and a variance by about 2 std OUTPUT_ATOL.
    mean_gap = np.abs(mean - recorded_mean) - (MC_SIGMAS * mean_error + OUTPUT_ATOL)
    std = np.sqrt(np.maximum(variance, recorded_variance))
    variance_gap = np.abs(variance - recorded_variance) - (MC_SIGMAS * variance_error + 2.0 * std * OUTPUT_ATOL)
    assert np.all(mean_gap <= 0), f"means: largest excess {np.max(mean_gap)}; {REGENERATE}"
    assert np.all(variance_gap <= 0), f"variances: largest excess {np.max(variance_gap)}; {REGENERATE}"
    assert np.max(arrays["mc_std"]) > 1e-3 and np.max(np.sqrt(variance)) > 1e-3  # the samples really varied


@pytest.mark.slow
def test_mc_model_stays_stochastic_after_loading(generator):
    model, arrays = load("mc_mlp")
    stochastic = [layer for layer in model.layers if isinstance(layer, (kerasdrop.Dropout, kerasdrop.GaussianDropout))]
    assert len(stochastic) == 2 and all(layer.mc for layer in stochastic)
    first, second = (model.predict(arrays["x"], verbose=0) for _ in range(2))
    assert np.max(np.abs(first - second)) > 1e-3
    assert np.max(np.abs(first - arrays["expected"])) > 1e-3
    generator.deterministic_output(model, arrays["x"])
    assert all(layer.mc for layer in stochastic)  # the deterministic prediction restored Monte Carlo mode


@pytest.mark.slow
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
    assert total < 70_000 * len(NAMES), f"{total:,} bytes"  # about 70 kB a model, on average
    for name in NAMES:
        config = json.loads(zipfile.ZipFile(SAVED / f"{name}.keras").read("config.json"))
        assert not config.get("compile_config"), name  # saved without its optimizer
