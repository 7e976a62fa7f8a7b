"""Test session set-up: TensorFlow unless KERAS_BACKEND names another backend, quiet logs, and two CPU devices for
the tests of data-parallel sampling (two logical CPUs for TensorFlow's MirroredStrategy, two host devices for JAX's
``keras.distribution.DataParallel``)."""

import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's own CPU convolution only takes channels_last (NHWC); channels_first runs through oneDNN, which
# TensorFlow turns on by itself only on CPUs with AVX-512 extensions. Turned on here, the channels_first tests run
# on every x86 CPU.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# JAX reads this when it starts, i.e. when Keras imports it below.
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

# JAX compiles each new program, and many repeat: one layer in several tests, one test helper's step on both
# pytest-xdist workers. A compilation cache shared by the processes of this run, in an empty folder made here and
# removed at its end, compiles each once (a fifth less time for the layer contract). It starts empty: no run
# depends on an earlier one.
_OWN_JAX_CACHE = None
if os.environ["KERAS_BACKEND"] == "jax" and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_JAX_CACHE = tempfile.mkdtemp(prefix="kerasdrop-tests-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_JAX_CACHE  # inherited by the xdist workers started after this
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # Logical devices must be configured before TensorFlow initialises its runtime, i.e. at import of the tests.
    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
elif keras.backend.backend() == "torch":
    import torch

    # pytest-xdist runs one process a core: one thread each, so that the workers do not fight over the cores.
    torch.set_num_threads(1)


def pytest_unconfigure(config):
    if _OWN_JAX_CACHE is not None:
        shutil.rmtree(_OWN_JAX_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _float32_policy():
    """Each test starts and ends with the float32 policy, whatever an earlier test set."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def strategy():
    """The one MirroredStrategy of a test process, over the two logical CPUs.

    Shared by every test that needs one: several strategies in one process share TensorFlow's collective instance
    keys, and a later strategy's all-reduce can then meet an earlier one's ("Shape mismatch in the collective
    instance"), depending on which tests a pytest worker happened to run before.
    """
    import tensorflow as tf

    devices = tf.config.list_logical_devices("CPU")
    assert len(devices) >= 2, "two logical CPUs are configured above"
    return tf.distribute.MirroredStrategy([device.name for device in devices[:2]])
