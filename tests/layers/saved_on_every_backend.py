"""One model that holds every layer case, saved by each Keras backend, to check `.keras` files across backends.

``tests/layers/saved_on/<backend>.keras`` is the model as the backend saved it, and ``<backend>.npz`` the inputs and
the deterministic (test-time) outputs the backend computed before saving: one input and one output per case of
`tests.layers.every_layer.CASES`, named after the case. Kernels are random, so every weight shows in the outputs.

Rewrite the files of a backend (after adding a case, say) with
``KERAS_BACKEND=jax python -m tests.layers.saved_on_every_backend``; run it once per backend.
"""

import pathlib

import keras
import numpy as np

from tests.layers.every_layer import CASES

FOLDER = pathlib.Path(__file__).resolve().parent / "saved_on"
BACKENDS = ("tensorflow", "jax", "torch")


def tensor_name(case_id):
    """A Keras name for the input or output of a case (ids have dashes)."""
    return case_id.replace("-", "_")


def build_model():
    """The model: each case's layer on an input of its own, unconnected to the others."""
    inputs, outputs = [], []
    for index, case in enumerate(CASES):
        kwargs = {"seed": index}
        if case.has_kernel:
            kwargs["kernel_initializer"] = keras.initializers.RandomNormal(stddev=0.5, seed=index)
        x = keras.Input(case.input_shape[1:], name=tensor_name(case.id))
        inputs.append(x)
        outputs.append(keras.layers.Identity(name=f"{tensor_name(case.id)}_output")(case.make(**kwargs)(x)))
    return keras.Model(inputs, outputs, name="every_layer")


def sample_inputs():
    """Normal inputs for each case, of the case's own shape."""
    rng = np.random.default_rng(0)
    return {tensor_name(case.id): rng.normal(size=case.input_shape).astype("float32") for case in CASES}


def test_outputs(model, inputs):
    """The model's test-time outputs, as NumPy arrays in the order of the cases (an eager call: the inputs of the
    cases have batches of different sizes, which `predict` does not take)."""
    return [keras.ops.convert_to_numpy(output) for output in model(inputs, training=False)]


def write(backend):
    model = build_model()
    inputs = sample_inputs()
    outputs = test_outputs(model, inputs)
    FOLDER.mkdir(exist_ok=True)
    model.save(FOLDER / f"{backend}.keras")
    arrays = {f"input/{name}": value for name, value in inputs.items()}
    arrays.update({f"output/{tensor_name(case.id)}": value for case, value in zip(CASES, outputs, strict=True)})
    np.savez_compressed(FOLDER / f"{backend}.npz", **arrays)


if __name__ == "__main__":
    write(keras.backend.backend())
    print(f"wrote {FOLDER}/{keras.backend.backend()}.keras and .npz")
