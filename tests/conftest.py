"""Test session set-up: TensorFlow backend, quiet logs, and two logical CPUs for MirroredStrategy tests."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's own CPU convolution only takes channels_last (NHWC); channels_first runs through oneDNN, which
# TensorFlow turns on by itself only on CPUs with AVX-512 extensions. Turned on here, the channels_first tests run
# on every x86 CPU.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Logical devices must be configured before TensorFlow initialises its runtime, i.e. at import of the tests.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


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
    devices = tf.config.list_logical_devices("CPU")
    assert len(devices) >= 2, "two logical CPUs are configured above"
    return tf.distribute.MirroredStrategy([device.name for device in devices[:2]])
