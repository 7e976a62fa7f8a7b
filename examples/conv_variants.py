"""Convolutional dropout variants: one small CNN per variant, trained on the digits as 8x8 images, saved, reloaded.

Every model is a functional `keras.Model`:

    input -> [input noise] -> Conv2D(16, 3x3, ReLU) -> [feature-map noise] -> [2x2 pooling]
          -> [second convolution, 32 filters] -> Flatten -> Dense(classes, softmax)

and each variant fills one bracketed slot with a kerasdrop layer (the others keep the plain Keras layer, or nothing):
Cutout on the input; SpatialDropout2D, DropBlock2D or MaxDrop2D on the first feature maps; MaxPoolingDropout2D or
AvgPoolingDropout2D instead of max pooling; DropConnectConv2D, SparseVariationalConv2D or ConcreteSpatialDropout2D
(around `Conv2D`) as the second convolution. Two residual CNNs (three blocks of two 3x3 convolutions of 16 filters
after the first convolution) compare stochastic depth, a `DropPath` at the end of each block with the rates of
`kerasdrop.drop_path_rates(3, 0.2)`, with the same network without it.

    python examples/conv_variants.py                      # scikit-learn's digits, offline, about a minute
    python examples/conv_variants.py --dataset cifar10    # CIFAR-10 through keras.datasets (downloaded once)
    python examples/conv_variants.py --quick              # a tiny budget, to check that it runs

The models go to saved_models/conv_<variant>.keras (--output-dir); `--help` lists the options.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (sets the Keras backend)
import keras  # noqa: E402

import kerasdrop  # noqa: E402

FILTERS = (16, 32)
RATE = 0.2
RESIDUAL_BLOCKS = 3


def plain_pool(seed):
    return keras.layers.MaxPooling2D(2)


def plain_conv(seed, task):
    return keras.layers.Conv2D(FILTERS[1], 3, padding="same", activation="relu")


def cnn(input_noise=None, feature_noise=None, pool=plain_pool, conv=plain_conv):
    """A builder of the CNN above; each slot is None or a function ``seed -> layer`` (``conv`` also gets the task)."""

    def build(task):
        inputs = keras.Input(task.input_shape)
        x = inputs if input_noise is None else input_noise(task.seed)(inputs)
        x = keras.layers.Conv2D(FILTERS[0], 3, padding="same", activation="relu")(x)
        if feature_noise is not None:
            x = feature_noise(task.seed + 1)(x)
        x = pool(task.seed + 2)(x)
        x = conv(task.seed + 3, task)(x)
        outputs = keras.layers.Dense(task.classes, activation="softmax")(keras.layers.Flatten()(x))
        return keras.Model(inputs, outputs)

    return build


def residual_cnn(max_rate):
    """A builder of the residual CNN above; ``max_rate`` 0 leaves DropPath out."""

    def build(task):
        inputs = keras.Input(task.input_shape)
        x = keras.layers.Conv2D(FILTERS[0], 3, padding="same", activation="relu")(inputs)
        for index, rate in enumerate(kerasdrop.drop_path_rates(RESIDUAL_BLOCKS, max_rate)):
            branch = keras.layers.Conv2D(FILTERS[0], 3, padding="same", activation="relu")(x)
            branch = keras.layers.Conv2D(FILTERS[0], 3, padding="same")(branch)
            if rate > 0:
                branch = kerasdrop.DropPath(rate, seed=task.seed + index)(branch)
            x = keras.layers.Activation("relu")(keras.layers.Add()([x, branch]))
        x = keras.layers.MaxPooling2D(2)(x)
        outputs = keras.layers.Dense(task.classes, activation="softmax")(keras.layers.Flatten()(x))
        return keras.Model(inputs, outputs)

    return build


def image_variant(name, **slots):
    return _common.Variant(name, cnn(**slots), layout="image")


VARIANTS = [
    image_variant("no dropout"),
    # A quarter of the shorter side: 2x2 pixels on the 8x8 digits, 7x7 on MNIST, 8x8 on CIFAR-10.
    image_variant("Cutout 0.25", input_noise=lambda seed: kerasdrop.Cutout(0.25, seed=seed)),
    image_variant("SpatialDropout2D 0.2", feature_noise=lambda seed: kerasdrop.SpatialDropout2D(RATE, seed=seed)),
    image_variant(
        "DropBlock2D 0.2, 3x3 blocks",
        feature_noise=lambda seed: kerasdrop.DropBlock2D(RATE, block_size=3, seed=seed),
    ),
    image_variant("MaxDrop2D 0.2", feature_noise=lambda seed: kerasdrop.MaxDrop2D(RATE, seed=seed)),
    image_variant("MaxPoolingDropout2D 0.2", pool=lambda seed: kerasdrop.MaxPoolingDropout2D(RATE, seed=seed)),
    image_variant("AvgPoolingDropout2D 0.2", pool=lambda seed: kerasdrop.AvgPoolingDropout2D(RATE, seed=seed)),
    image_variant(
        "DropConnectConv2D 0.2",
        conv=lambda seed, task: kerasdrop.DropConnectConv2D(
            FILTERS[1], 3, RATE, padding="same", activation="relu", seed=seed
        ),
    ),
    image_variant(
        "SparseVariationalConv2D",
        conv=lambda seed, task: kerasdrop.SparseVariationalConv2D(
            FILTERS[1], 3, padding="same", activation="relu", kl_weight=1.0 / task.train_size, seed=seed
        ),
    ),
    image_variant(
        "ConcreteSpatialDropout2D",
        conv=lambda seed, task: kerasdrop.ConcreteSpatialDropout2D(
            plain_conv(seed, task),
            **_common.concrete_regularizers(task.train_size),
            seed=seed,
        ),
    ),
    _common.Variant("residual CNN, no DropPath", residual_cnn(0.0), layout="image"),
    _common.Variant("residual CNN + DropPath, drop_path_rates(3, 0.2)", residual_cnn(RATE), layout="image"),
]


main = _common.script_main(VARIANTS, __doc__, prefix="conv", epochs=20)


if __name__ == "__main__":
    main()
