"""Small offline data: scikit-learn's 8x8 digits, ready for dense, convolutional and recurrent models.

scikit-learn ships the digits with the package, so nothing is downloaded. MNIST and CIFAR-10 are available through
``load_keras_dataset``, which needs the network the first time and fails with a clear message without it.
"""

import numpy as np

LAYOUTS = ("flat", "image", "sequence")


def load_digits(layout="flat", test_fraction=0.25, seed=0):
    """The 1,797 digits of scikit-learn as float32 in [0, 1], split into train and test sets with stratification.

    Args:
        layout: "flat" gives ``(n, 64)``; "image" gives ``(n, 8, 8, 1)`` (channels_last); "sequence" gives
            ``(n, 8, 8)``: 8 time steps of 8 pixels, one image row a step.
        test_fraction: float in (0, 1), the share of samples held out.
        seed: int, the shuffle of the split.

    Returns:
        ``(x_train, y_train), (x_test, y_test)`` with integer labels 0-9.
    """
    from kerasdrop._validation import check_choice, check_float, check_seed

    check_choice("layout", layout, LAYOUTS)
    check_float("test_fraction", test_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    check_seed(seed)
    try:
        from sklearn.datasets import load_digits as sklearn_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "kerasdrop.datasets.load_digits needs scikit-learn: pip install 'kerasdrop[examples]'"
        ) from error
    digits = sklearn_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    if layout == "image":
        x = x.reshape(-1, 8, 8, 1)
    elif layout == "sequence":
        x = x.reshape(-1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return (x_train, y_train), (x_test, y_test)


def load_keras_dataset(name):
    """MNIST or CIFAR-10 through ``keras.datasets``, as float32 in [0, 1] with integer labels.

    Raises:
        RuntimeError: with instructions when the download fails (e.g. on a machine without internet access).
    """
    import keras

    from kerasdrop._validation import check_choice

    check_choice("name", name, ("mnist", "cifar10"))
    loader = {"mnist": keras.datasets.mnist, "cifar10": keras.datasets.cifar10}[name]
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:
        raise RuntimeError(
            f"Could not load {name!r} through keras.datasets ({type(error).__name__}: {error}). It is downloaded on "
            "first use and cached in ~/.keras/datasets; without internet access use the digits data instead."
        ) from error
    x_train = (x_train / 255.0).astype("float32")
    x_test = (x_test / 255.0).astype("float32")
    if x_train.ndim == 3:
        x_train, x_test = x_train[..., None], x_test[..., None]
    return (x_train, np.ravel(y_train).astype("int64")), (x_test, np.ravel(y_test).astype("int64"))
