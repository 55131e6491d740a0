"""The MLP's achieved training FLOP rate against this machine's measured matmul FLOP rate.

A training step of the 784-512-10 MLP at batch B does these matrix products (2 FLOPs per
multiply-add): forward ``X W1`` and ``H W2``; weight gradients ``X^T dH`` and ``H^T dZ``; the
input gradient ``dZ W2^T`` (the first layer needs none). The micro-benchmark runs exactly those
five products, in TF (same kernels as training) and in numpy, and takes the faster as the
machine's matmul rate.
"""

import time
from typing import Dict

import numpy as np

from graph_models._tf import tf, v1

SHAPES = [(100, 784, 512), (784, 100, 512), (100, 512, 10), (512, 100, 10), (100, 10, 512)]


def step_flops(batch: int = 100) -> int:
    """FLOPs of the matrix products of one MLP training step."""
    return sum(2 * m * k * n for m, k, n in
               [(batch, 784, 512), (784, batch, 512), (batch, 512, 10), (512, batch, 10),
                (batch, 10, 512)])


def matmul_rate(quick: bool = False) -> Dict:
    """FLOP/s of the five training-step products, in TF (one Session run) and numpy."""
    rng = np.random.default_rng(0)
    pairs = [(rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32))
             for m, k, n in SHAPES]
    flops = sum(2 * m * k * n for m, k, n in SHAPES)
    repeats = 20 if quick else 300
    graph = tf.Graph()
    with graph.as_default():
        # Variables, so the products are recomputed every run rather than constant-folded.
        products = [tf.matmul(v1.Variable(a), v1.Variable(b)) for a, b in pairs]
        total = tf.add_n([tf.reduce_sum(p) for p in products])
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as session:
        session.run(init)
        for _ in range(10):
            session.run(total)
        began = time.perf_counter()
        for _ in range(repeats):
            session.run(total)
        tf_rate = flops * repeats / (time.perf_counter() - began)
    for a, b in pairs:
        a @ b
    began = time.perf_counter()
    for _ in range(repeats):
        for a, b in pairs:
            a @ b
    numpy_rate = flops * repeats / (time.perf_counter() - began)
    return {'tf_matmul_flops': tf_rate, 'numpy_matmul_flops': numpy_rate,
            'machine_matmul_flops': max(tf_rate, numpy_rate)}
