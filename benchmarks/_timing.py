"""Timing shared by the benchmarks: candidates run alternately in one process so they share the machine's state."""

import os
import platform
import statistics
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _cpu_name():
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def backend_description():
    """``(backend, accelerators, library and version)`` of the Keras backend this process runs."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return backend, len(tf.config.list_physical_devices("GPU")), f"TensorFlow {tf.__version__}"
    if backend == "jax":
        import jax

        return backend, sum(device.platform != "cpu" for device in jax.devices()), f"JAX {jax.__version__}"
    import torch

    return backend, torch.cuda.device_count(), f"PyTorch {torch.__version__}"


def machine_description():
    import keras

    backend, accelerators, library = backend_description()
    device = f"{accelerators} accelerator(s)" if accelerators else "CPU only"
    return (
        f"{_cpu_name()}, {os.cpu_count()} cores, {device}; Python {platform.python_version()}, {library}, "
        f"Keras {keras.__version__} (backend {backend})"
    )


def median_times(candidates, repeats=30, warmup=3):
    """Median wall time of each zero-argument callable, running the candidates in alternation.

    Args:
        candidates: dict name -> callable; each call must finish its work before returning (e.g. read a result).
        repeats: timed rounds; each round calls every candidate once, in turn.
        warmup: untimed rounds first (tracing, caches).

    Returns:
        dict name -> median seconds per call.
    """
    for _ in range(warmup):
        for function in candidates.values():
            function()
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, function in candidates.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title, medians, baseline, goal=None):
    """Prints the medians and each one's ratio to ``baseline``; returns the ratios."""
    print(f"\n{title}\n  machine: {machine_description()}")
    ratios = {}
    for name, seconds in medians.items():
        ratios[name] = seconds / medians[baseline]
        print(f"  {name:<45s} {seconds * 1e3:9.3f} ms   ratio {ratios[name]:.3f}")
    if goal is not None:
        print(f"  goal: {goal}")
    return ratios


def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_during(function):
    """Peak resident memory (MiB) of this process while ``function`` runs, polled every millisecond."""
    peak, running = [rss_mib()], [True]

    def poll():
        while running[0]:
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.001)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        function()
    finally:
        running[0] = False
        thread.join()
    return max(peak[0], rss_mib())
