"""Monte Carlo dropout on convolutional networks: `kerasdrop.MCDropout.predict` against `predict` called T times.

Models (128 images, T = 50, weights untrained: the timing does not depend on them):

- ``keras.applications.MobileNetV2(weights=None)`` on 96x96x3 inputs, global average pooling, then
  ``kerasdrop.Dropout(0.5, mc=True)`` and the Dense classifier: dropout only before the classifier, so MCDropout runs
  the convolutional base once per image and only the classifier once per sample;
- a small CNN (32x32x3; Conv 32, Conv 32, ``kerasdrop.SpatialDropout2D(0.3, mc=True)``, Conv 64, pooling, Dense):
  the first two convolutions run once, the third and the classifier once per sample.

Baseline: the loop a user writes without kerasdrop's predictor, ``[model.predict(x) for _ in range(50)]`` on the
same model (its dropout in Monte Carlo mode). Goals: MobileNetV2 >= 30x faster, small CNN >= 2.5x faster; joint
draws (``consistent=True``) at most 1.1x the time of the default, per-input draws. The peak
resident memory added by one ``MCDropout.predict`` is reported against ``memory_budget_mb``, and the small CNN is
also sampled under a ``tf.distribute.MirroredStrategy`` of two logical CPUs (on shared cores no speed-up is
expected; on several GPUs that is where it pays).

Run: ``.venv/bin/python benchmarks/bench_mc_cnn.py`` (a few minutes on 2 cores).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks._timing import median_times, peak_rss_during, report, rss_mib  # noqa: E402

SAMPLES = 50
IMAGES = 128


def mobilenet():
    import keras

    import kerasdrop

    inputs = keras.Input((96, 96, 3))
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights=None, pooling="avg")
    hidden = kerasdrop.Dropout(0.5, mc=True)(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden), name="mobilenet_v2_mc")


def small_cnn():
    import keras

    import kerasdrop

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = kerasdrop.SpatialDropout2D(0.3, mc=True)(x)
    x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(64, 3, activation="relu")(x))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="small_cnn_mc")


def compare(title, model, x, goal, repeats):
    import numpy as np

    import kerasdrop

    mc = kerasdrop.MCDropout(model, samples=SAMPLES)
    joint = kerasdrop.MCDropout(model, samples=SAMPLES, consistent=True)
    loop, mine, shared = "50 x model.predict (mc=True)", "MCDropout.predict", "MCDropout.predict consistent=True"
    found = {
        loop: lambda: np.stack([model.predict(x, batch_size=IMAGES, verbose=0) for _ in range(SAMPLES)]),
        mine: lambda: mc.predict(x, verbose=0).mean,
        shared: lambda: joint.predict(x, verbose=0).mean,
    }
    medians = median_times(found, repeats=repeats, warmup=1)
    report(title, medians, loop)
    print(f"  speed-up {medians[loop] / medians[mine]:.1f}x (goal >= {goal}x)")
    print(f"  joint draws: {medians[shared] / medians[mine]:.3f}x the time of the default (goal <= 1.1x)")
    before = rss_mib()
    peak = peak_rss_during(lambda: mc.predict(x, verbose=0))
    row_bytes, rows = mc.rows_per_call(x)
    print(
        f"  peak RSS +{peak - before:.1f} MiB during one MCDropout.predict (budget {mc.memory_budget_mb:.0f} MiB: "
        f"estimate {row_bytes} B per row -> {rows} rows a call)"
    )
    return mc


def replicas(model, x):
    import tensorflow as tf

    import kerasdrop

    devices = [device.name for device in tf.config.list_logical_devices("CPU")[:2]]
    strategy = tf.distribute.MirroredStrategy(devices)
    one = kerasdrop.MCDropout(model, samples=SAMPLES)
    two = kerasdrop.MCDropout(model, samples=SAMPLES, strategy=strategy)
    found = {
        "one replica": lambda: one.predict(x, verbose=0).mean,
        "two replicas": lambda: two.predict(x, verbose=0).mean,
    }
    medians = median_times(found, repeats=5, warmup=1)
    report(f"small CNN, {IMAGES} images, T={SAMPLES}: MirroredStrategy over two logical CPUs", medians, "one replica")


def main():
    import tensorflow as tf

    # Two logical CPUs for the strategy section; set before TensorFlow starts its runtime.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((IMAGES, 96, 96, 3), dtype="float32")
    compare(
        f"MobileNetV2 96x96, dropout before the classifier, {IMAGES} images, T={SAMPLES}", mobilenet(), images, 30, 2
    )
    cnn, small = small_cnn(), rng.random((IMAGES, 32, 32, 3), dtype="float32")
    compare(
        f"small CNN with SpatialDropout2D after its second convolution, {IMAGES} images, T={SAMPLES}",
        cnn,
        small,
        2.5,
        5,
    )
    replicas(cnn, small)


if __name__ == "__main__":
    main()
