"""An explicit `output_type` is checked against what can be seen: the output's activation, and the sampled values."""

import keras
import numpy as np
import pytest

import kerasdrop


def _classifier(activation, units=4, dtype=None):
    inputs = keras.Input((6,))
    hidden = kerasdrop.Dropout(0.5, seed=1)(keras.layers.Dense(16, activation="relu", dtype=dtype)(inputs))
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation, dtype=dtype)(hidden))


X = np.random.default_rng(0).normal(size=(8, 6)).astype("float32") * 3


@pytest.mark.parametrize("activation, units", [("softmax", 4), ("sigmoid", 1), ("sigmoid", 3)])
def test_logits_on_an_output_with_softmax_or_sigmoid_are_refused_naming_the_activation(activation, units):
    with pytest.raises(ValueError, match=rf"'logits' for the output .* whose activation is {activation}"):
        kerasdrop.MCDropout(_classifier(activation, units), output_type="logits")


def test_logits_on_one_output_of_several_name_that_output():
    inputs = keras.Input((6,))
    hidden = kerasdrop.Dropout(0.5)(inputs)
    outputs = {"label": keras.layers.Dense(3, activation="softmax")(hidden), "score": keras.layers.Dense(1)(hidden)}
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match=r"'logits' for output 'label'.*softmax"):
        kerasdrop.MCDropout(model, output_type={"label": "logits", "score": "regression"})
    kerasdrop.MCDropout(model, output_type={"label": "probabilities", "score": "logits"})


@pytest.mark.parametrize("units", [1, 4])
def test_probabilities_that_are_not_probabilities_are_refused_with_the_range_seen(units):
    mc = kerasdrop.MCDropout(_classifier(None, units), samples=5, output_type="probabilities")
    with pytest.raises(ValueError, match=r"'probabilities' for the output, whose samples are not probabilities"):
        mc.predict(X, verbose=0)


def test_rows_that_do_not_sum_to_one_are_refused():
    """Values in [0, 1] (a sigmoid over 4 units) read as one distribution over the classes: the rows' sums are named."""
    inputs = keras.Input((6,))
    hidden = kerasdrop.Dropout(0.5, seed=1)(inputs)
    squashed = keras.layers.Activation("sigmoid")(keras.layers.Dense(4)(hidden))
    model = keras.Model(inputs, keras.layers.Activation("linear")(squashed))  # the activation seen is linear
    with pytest.raises(ValueError, match=r"rows summing to values in"):
        kerasdrop.MCDropout(model, samples=5, output_type="probabilities").predict(X, verbose=0)


@pytest.mark.parametrize(
    "activation, units, output_type, dtype",
    [
        ("softmax", 4, "probabilities", None),
        ("softmax", 4, "probabilities", "float16"),
        ("softmax", 4, "probabilities", "bfloat16"),
        ("sigmoid", 3, "probabilities", None),  # independent Bernoulli units: rows need not sum to 1
        (None, 4, "logits", None),
        (None, 4, "regression", None),
    ],
)
def test_consistent_output_types_are_accepted(activation, units, output_type, dtype):
    result = kerasdrop.MCDropout(_classifier(activation, units, dtype), samples=20, output_type=output_type).predict(
        X, verbose=0
    )
    assert result.output_type == output_type
    assert np.all(np.isfinite(result.mean))
