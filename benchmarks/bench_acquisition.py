"""BatchBALD speed: `kerasdrop.acquisition.batch_bald` choosing a batch of 10 from a pool of 1,000 inputs.

Goal (CPU): under one second for k = 10, N = 1,000 pool inputs, T = 50 Monte Carlo samples and C = 10 classes (the
default budget of 1,000 joint label configurations). Also timed in the same run: BALD's top 10 (the one-at-a-time
choice BatchBALD improves on), and on a small pool the brute-force greedy choice, which enumerates every label
configuration of every candidate batch from scratch, against `batch_bald` making the same choice.

Run: ``python benchmarks/bench_acquisition.py`` (``--quick`` for fewer rounds).
"""

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._timing import median_times, report  # noqa: E402

K, POOL, SAMPLES, CLASSES = 10, 1000, 50, 10
SMALL = {"k": 3, "pool": 40, "samples": 10, "classes": 4}


def softmax_samples(samples, pool, classes, seed=0):
    import numpy as np

    logits = np.random.default_rng(seed).normal(scale=2.0, size=(samples, pool, classes))
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probs / probs.sum(axis=-1, keepdims=True)


def brute_force_batch_bald(samples, k):
    """The greedy choice with every joint entropy enumerated from scratch: ``C^|batch|`` configurations each."""
    import numpy as np

    count, pool, classes = samples.shape
    conditional = -(samples * np.log(samples)).sum(axis=-1).mean(axis=0)
    chosen = []
    for _ in range(k):
        best, best_value = None, -np.inf
        for n in (n for n in range(pool) if n not in chosen):
            batch = [*chosen, n]
            labels = np.array(list(itertools.product(range(classes), repeat=len(batch))))  # (C^b, b)
            joint = np.prod(samples[:, batch, :][:, np.arange(len(batch)), labels], axis=-1).mean(axis=0)
            value = -np.sum(joint * np.log(joint)) - conditional[batch].sum()
            if value > best_value:
                best, best_value = n, value
        chosen.append(best)
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed rounds")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10

    from kerasdrop import acquisition

    samples = softmax_samples(SAMPLES, POOL, CLASSES)
    medians = median_times(
        {
            "batch_bald(k=10)": lambda: acquisition.batch_bald(samples, K, seed=0),
            "top_k(bald, 10)": lambda: acquisition.top_k(acquisition.bald(samples), K),
        },
        repeats=repeats,
        warmup=1,
    )
    report(
        f"Choosing {K} of {POOL} pool inputs from {SAMPLES} samples of {CLASSES} classes, time relative to BALD's "
        "top k",
        medians,
        baseline="top_k(bald, 10)",
        goal="batch_bald under 1 s",
    )
    print(f"  batch_bald: {medians['batch_bald(k=10)']:.3f} s (goal < 1 s)")

    small = softmax_samples(SMALL["samples"], SMALL["pool"], SMALL["classes"], seed=1)
    same = acquisition.batch_bald(small, SMALL["k"]).tolist() == brute_force_batch_bald(small, SMALL["k"])
    medians = median_times(
        {
            "brute force": lambda: brute_force_batch_bald(small, SMALL["k"]),
            "batch_bald": lambda: acquisition.batch_bald(small, SMALL["k"]),
        },
        repeats=repeats,
        warmup=1,
    )
    ratios = report(
        f"Small pool (k={SMALL['k']}, N={SMALL['pool']}, T={SMALL['samples']}, C={SMALL['classes']}), time relative "
        "to the brute-force greedy choice",
        medians,
        baseline="brute force",
    )
    print(f"  batch_bald is {1 / ratios['batch_bald']:.0f}x faster than the brute force; same batch: {same}")


if __name__ == "__main__":
    main()
