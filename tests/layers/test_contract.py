"""The contract every public layer keeps on every Keras backend (TensorFlow, JAX, PyTorch), one case per layer.

Each family's own tests check the mathematics; this module checks, for each case of `tests.layers.every_layer`, what
a user of any backend relies on: new noise at each training call (eager and compiled), the same noise from the same
seed, a deterministic test mode, sampling at test time with ``mc=True``, new noise at each step of ``fit``,
gradients that reach every trainable weight and the inputs, a `.keras` round trip with the same test outputs, and
`.keras` files saved on each backend that load on this one and give the outputs their backend computed. The `fit`
and `.keras` legs are marked `slow` (`make test-all`); the calls, seeds and gradients run in `make test` too.
"""

import keras
import numpy as np
import pytest

import kerasdrop
from tests import backend, utils
from tests.layers import every_layer, saved_on_every_backend
from tests.layers.every_layer import CASES, IDS, RECURRENT

# Outputs of a model saved on another backend: float32 arithmetic in another order (convolution and matrix product
# kernels, recurrent steps), a few rounding units of the largest output.
CROSS_BACKEND_RTOL = 1e-5
CROSS_BACKEND_ATOL = 1e-5


def _layer(case, **kwargs):
    """The case's layer with seeded weights, so that two layers made alike hold the same weights."""
    if case.has_kernel:
        kwargs.setdefault("kernel_initializer", keras.initializers.RandomNormal(stddev=0.5, seed=7))
    if case.id in RECURRENT:
        kwargs.setdefault("recurrent_initializer", keras.initializers.Orthogonal(seed=8))
    return case.make(**kwargs)


def _input(case, seed=0):
    return np.random.default_rng(seed).normal(size=case.input_shape).astype("float32")


@pytest.mark.parametrize("case", every_layer.params())
def test_noise_is_new_at_each_call_and_repeats_with_the_seed(case):
    x = _input(case)
    utils.assert_fresh_noise_each_call(lambda: _layer(case, seed=1), x)
    utils.assert_same_seed_same_noise(lambda: _layer(case, seed=9), x)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_test_mode_is_deterministic_and_mc_samples(case):
    x = _input(case)
    layer = _layer(case, seed=1)
    np.testing.assert_array_equal(utils.to_numpy(layer(x)), utils.to_numpy(layer(x)))
    sampling = _layer(case, seed=1, mc=True)
    assert utils.calls_differ(lambda: sampling(x)), "mc=True was deterministic at test time"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fit_draws_new_noise_at_each_step(case):
    utils.assert_fresh_noise_in_fit(_layer(case, seed=1), _input(case))


@pytest.mark.parametrize("case", every_layer.params())
def test_gradients_reach_the_inputs_and_every_trainable_weight(case):
    layer = _layer(case, seed=1)
    x = _input(case)
    layer(x)  # builds the weights
    inputs = keras.Variable(x, name="inputs")
    # A random linear read-out, so that no gradient cancels by symmetry (a sum of softmax outputs would).
    readout = keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=layer(x).shape).astype("float32"))

    def loss():
        # Over four draws: in one, DropConnect drops all 4 biases with probability 1/16 (zero gradient, rightly).
        return sum(keras.ops.sum(layer(inputs, training=True) * readout) for _ in range(4))

    variables = [inputs, *layer.trainable_variables]
    for variable, gradient in zip(variables, backend.gradients(loss, variables), strict=True):
        assert gradient is not None, f"no gradient reaches {variable.path}"
        gradient = utils.to_numpy(gradient)
        assert gradient.shape == tuple(variable.shape), variable.path
        assert np.all(np.isfinite(gradient)), f"non-finite gradient of {variable.path}"
        assert np.any(gradient != 0), f"zero gradient of {variable.path}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_keras_file_round_trip_keeps_test_outputs_and_mc(case, tmp_path):
    x = _input(case)
    inputs = keras.Input(case.input_shape[1:])
    model = keras.Model(inputs, _layer(case, seed=1)(inputs))
    reloaded = utils.save_and_load(model, tmp_path)
    assert type(reloaded.layers[1]) is type(model.layers[1])
    assert utils.as_json(reloaded.layers[1].get_config()) == utils.as_json(model.layers[1].get_config())
    np.testing.assert_allclose(utils.to_numpy(reloaded(x)), utils.to_numpy(model(x)), rtol=1e-6)
    assert kerasdrop.set_mc(reloaded) == 1
    assert utils.calls_differ(lambda: reloaded.predict(x, verbose=0)), "the reloaded model did not sample with mc"


@pytest.fixture(scope="module", params=saved_on_every_backend.BACKENDS, ids=lambda name: f"saved_on_{name}")
def saved(request):
    """The every-layer model saved on one backend, loaded on this one, with the inputs and outputs it was saved with."""
    folder = saved_on_every_backend.FOLDER
    model = keras.saving.load_model(folder / f"{request.param}.keras")
    with np.load(folder / f"{request.param}.npz") as arrays:
        arrays = dict(arrays)
    inputs = {key.split("/", 1)[1]: value for key, value in arrays.items() if key.startswith("input/")}
    outputs = saved_on_every_backend.test_outputs(model, inputs)
    return model, dict(zip(model.output_names, outputs, strict=True)), arrays


@pytest.mark.slow
def test_saved_models_hold_every_case(saved):
    model, _, arrays = saved
    names = [saved_on_every_backend.tensor_name(case_id) for case_id in IDS]
    assert model.output_names == [f"{name}_output" for name in names]
    assert sorted(key.split("/", 1)[1] for key in arrays if key.startswith("output/")) == sorted(names), (
        "the saved models predate a case: rewrite them with `python -m tests.layers.saved_on_every_backend` on each "
        "backend"
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_model_saved_on_any_backend_gives_its_outputs_here(saved, case):
    _, outputs, arrays = saved
    name = saved_on_every_backend.tensor_name(case.id)
    expected = arrays[f"output/{name}"]
    np.testing.assert_allclose(
        outputs[f"{name}_output"],
        expected,
        rtol=CROSS_BACKEND_RTOL,
        atol=CROSS_BACKEND_ATOL * max(1.0, float(np.max(np.abs(expected)))),
    )
