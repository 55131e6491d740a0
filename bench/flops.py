"""FLOPs of a training step, counted from the real training graph, and the matmul rate.

`step_flops` walks every op that ``train_op`` runs and counts, with the batch size filled
into the unknown dimension:

- matrix products (``MatMul``: 2 m k n; ``Conv2D`` and its two backprops: 2 per
  multiply-add): the forward products, both backward products of every layer (weight
  gradient dW and input gradient dX), except dX of the first layer, which TF does not build
  because ``Input`` needs no gradient (the count shows what the graph really runs);
- the optimizer: ``ApplyAdam`` does about 12 FLOPs per parameter (m: 3, v: 4, update: 5);
- minor terms: one FLOP per element of bias adds, activations and their gradients, pooling and
  other element-wise ops, five per logit for softmax cross-entropy (approximate).

`matmul_rate` times exactly the counted products (same shapes and transposes) in one TF
Session run and in numpy, in the same process, as the machine's reference rate.
"""

import time
from typing import Callable, Dict, List, Tuple

import numpy as np

from graph_models._tf import tf, v1

MATMUL_OPS = ('MatMul', 'Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter')
ADAM_OPS = ('ApplyAdam', 'ResourceApplyAdam')
ADAM_FLOPS_PER_PARAMETER = 12
# Element-wise and reduction ops of the step, one FLOP per element (xent: five per logit).
MINOR_OPS = {'BiasAdd': 1, 'BiasAddGrad': 1, 'Relu': 1, 'ReluGrad': 1, 'MaxPool': 1,
             'MaxPoolGrad': 1, 'AddV2': 1, 'Add': 1, 'Mul': 1, 'Sub': 1, 'RealDiv': 1,
             'Sum': 1, 'Mean': 1, 'SparseSoftmaxCrossEntropyWithLogits': 5,
             'FusedBatchNormV3': 5, 'FusedBatchNormGradV3': 8, 'FakeQuantWithMinMaxVars': 6,
             'FakeQuantWithMinMaxVarsGradient': 3, 'FakeQuantWithMinMaxArgs': 6, 'Min': 1,
             'Max': 1}


def _dims(shape, batch: int) -> List[int]:
    return [batch if d is None else int(d) for d in shape.as_list()]


def _numel(shape, batch: int) -> int:
    if shape.rank is None:
        return 0
    return int(np.prod(_dims(shape, batch))) if shape.rank else 1


def step_ops(train_op: tf.Operation) -> List[tf.Operation]:
    """Every op a ``session.run(train_op)`` executes (data and control inputs, transitively)."""
    seen, stack = {}, [train_op]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen[op.name] = op
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return list(seen.values())


def matmul_shapes(op: tf.Operation, batch: int) -> Tuple[int, int, int]:
    """``(m, k, n)`` of a ``MatMul`` (after its transposes), batch filled in."""
    a, b = (_dims(t.shape, batch) for t in op.inputs[:2])
    if op.get_attr('transpose_a'):
        a = a[::-1]
    if op.get_attr('transpose_b'):
        b = b[::-1]
    return a[0], a[1], b[1]


def _conv_flops(op: tf.Operation, batch: int) -> int:
    """2 x multiply-adds of a convolution or either backprop (same count as the forward)."""
    if op.type == 'Conv2D':
        out, kernel = _dims(op.outputs[0].shape, batch), _dims(op.inputs[1].shape, batch)
    elif op.type == 'Conv2DBackpropInput':  # (input_sizes, filter, out_backprop)
        out, kernel = _dims(op.inputs[2].shape, batch), _dims(op.inputs[1].shape, batch)
    else:  # Conv2DBackpropFilter: (input, filter_sizes, out_backprop); output is the filter.
        out, kernel = _dims(op.inputs[2].shape, batch), _dims(op.outputs[0].shape, batch)
    return 2 * int(np.prod(out)) * kernel[0] * kernel[1] * kernel[2]


def step_flops(graph: tf.Graph, train_op: tf.Operation, batch: int) -> Dict:
    """Counts the FLOPs of one training step of ``graph`` at batch size ``batch``.

    Returns:
      ``{'matmul': FLOPs of the products, 'optimizer': Adam's, 'minor': the rest, 'total',
      'products': [(op name, op type, FLOPs, (m, k, n) for MatMul or None)],
      'parameters': trainable parameters updated}``.
    """
    del graph  # The ops come from train_op; the argument documents where they live.
    products, minor, optimizer, parameters = [], 0, 0, 0
    for op in step_ops(train_op):
        if op.type == 'MatMul':
            m, k, n = matmul_shapes(op, batch)
            products.append((op.name, op.type, 2 * m * k * n, (m, k, n)))
        elif op.type in MATMUL_OPS:
            products.append((op.name, op.type, _conv_flops(op, batch), None))
        elif op.type in ADAM_OPS:
            size = _numel(op.inputs[0].shape if op.type == 'ApplyAdam' else op.inputs[9].shape,
                          batch)
            parameters += size
            optimizer += ADAM_FLOPS_PER_PARAMETER * size
        elif op.type in MINOR_OPS:
            size = max([_numel(t.shape, batch) for t in list(op.inputs[:1]) + op.outputs[:1]])
            minor += MINOR_OPS[op.type] * size
    matmul = sum(p[2] for p in products)
    products.sort()
    return {'matmul': matmul, 'optimizer': optimizer, 'minor': minor,
            'total': matmul + optimizer + minor, 'products': products, 'parameters': parameters}


def model_step_flops(name: str, batch: int = 100) -> Dict:
    """`step_flops` of the training graph `graph-models train` builds for model ``name``."""
    train_op = _training_graph(name).train_op
    return step_flops(train_op.graph, train_op, batch)


def _products_seconds(build: Callable[[], List[tf.Tensor]], repeats: int,
                      warmup: int = 5) -> float:
    """Seconds per Session run of the products ``build()`` creates (on variables, so they are
    recomputed every run rather than constant-folded) in a fresh graph.

    One element of each product is fetched: every product is computed in full, and no
    reduction adds work to the time.
    """
    return _seconds_per_run(
        lambda: tf.add_n([tf.cast(tf.reshape(t, [-1])[0], tf.float32) for t in build()]),
        repeats, warmup)


def _seconds_per_run(build: Callable[[], object], repeats: int, warmup: int) -> float:
    """Seconds per Session run of the fetch ``build()`` creates in a fresh graph (its
    variables initialized, ``warmup`` runs first)."""
    graph = tf.Graph()
    with graph.as_default():
        fetch = build()
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as session:
        session.run(init)
        run = session.make_callable(fetch)
        for _ in range(warmup):
            run()
        began = time.perf_counter()
        for _ in range(repeats):
            run()
        return (time.perf_counter() - began) / repeats


def matmul_rate(shapes: List[Tuple[int, int, int]], quick: bool = False) -> Dict:
    """FLOP/s of the given ``(m, k, n)`` products, in TF (one Session run) and numpy."""
    rng = np.random.default_rng(0)
    pairs = [(rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32))
             for m, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    repeats = 20 if quick else 300
    tf_rate = flops / _products_seconds(
        lambda: [tf.matmul(v1.Variable(a), v1.Variable(b)) for a, b in pairs], repeats)
    for a, b in pairs:
        a @ b
    began = time.perf_counter()
    for _ in range(repeats):
        for a, b in pairs:
            a @ b
    numpy_rate = flops * repeats / (time.perf_counter() - began)
    return {'tf_matmul_flops': tf_rate, 'numpy_matmul_flops': numpy_rate,
            'machine_matmul_flops': max(tf_rate, numpy_rate)}


def _product_op(op: tf.Operation, batch: int, rng: np.random.Generator,
                dtype: tf.DType = tf.float32) -> tf.Tensor:
    """A copy of product ``op`` (same type, attributes, shapes) on fresh variables of
    ``dtype``, in the current graph."""
    def variable(t):
        return v1.Variable(tf.cast(rng.random(_dims(t.shape, batch), dtype=np.float32), dtype))

    def sizes(t):  # The shape operands of the backprops: same values, as constants.
        return tf.constant(_dims(t.shape, batch), tf.int32)

    if op.type == 'MatMul':
        return tf.raw_ops.MatMul(a=variable(op.inputs[0]), b=variable(op.inputs[1]),
                                 transpose_a=op.get_attr('transpose_a'),
                                 transpose_b=op.get_attr('transpose_b'))
    attrs = {k: op.get_attr(k) for k in ('strides', 'padding', 'explicit_paddings',
                                         'data_format', 'dilations')}
    if op.type == 'Conv2D':
        return tf.raw_ops.Conv2D(input=variable(op.inputs[0]), filter=variable(op.inputs[1]),
                                 **attrs)
    if op.type == 'Conv2DBackpropInput':
        return tf.raw_ops.Conv2DBackpropInput(
            input_sizes=sizes(op.outputs[0]), filter=variable(op.inputs[1]),
            out_backprop=variable(op.inputs[2]), **attrs)
    return tf.raw_ops.Conv2DBackpropFilter(
        input=variable(op.inputs[0]), filter_sizes=sizes(op.outputs[0]),
        out_backprop=variable(op.inputs[2]), **attrs)


def products_only_seconds(train_op: tf.Operation, batch: int, repeats: int = 100,
                          precision: str = 'float32') -> float:
    """Seconds per step of nothing but the step's products (forward and backward matmuls and
    convolutions: same types, shapes and attributes, on variables), all in one Session run.

    That is the floor of any training step on this runtime: the graph/Keras ratio cannot
    exceed Keras' step time over it, whatever else the graph side saves. With ``precision``
    ``mixed_bfloat16`` the products take bfloat16 operands (on bfloat16 variables, so no cast
    is timed): the floor of a step whose products the bfloat16 rewrite moved to bfloat16.
    """
    from graph_models.nets.precision import MIXED_BFLOAT16, check_precision
    check_precision(precision)
    dtype = tf.bfloat16 if precision == MIXED_BFLOAT16 else tf.float32
    rng = np.random.default_rng(0)
    products = [op for op in step_ops(train_op) if op.type in MATMUL_OPS]
    return _products_seconds(lambda: [_product_op(op, batch, rng, dtype) for op in products],
                             repeats)


def optimizer_only_seconds(train_op: tf.Operation, repeats: int = 100, warmup: int = 5) -> float:
    """Seconds per step of nothing but the step's Adam updates (one ``ResourceApplyAdam`` per
    trained variable, same shapes, float32 as in every precision), all in one Session run.

    The other work every step must do after its products: with `products_only_seconds` it
    shows how near its products-only floor a step with an Adam update can come at all.
    """
    shapes = [op.inputs[9].shape for op in step_ops(train_op) if op.type in ADAM_OPS]
    rng = np.random.default_rng(0)

    def build():
        def variable(shape):
            return tf.Variable(rng.random(shape.as_list(), dtype=np.float32) * 1e-3)
        updates = []
        for shape in shapes:
            var, m, v, grad = (variable(shape) for _ in range(4))
            updates.append(tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=m.handle, v=v.handle, beta1_power=0.9, beta2_power=0.999,
                lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, grad=grad.read_value()))
        return tf.group(*updates)
    return _seconds_per_run(build, repeats, warmup)


def model_optimizer_only_seconds(name: str, repeats: int = 100) -> float:
    """`optimizer_only_seconds` of the training graph `graph-models train` builds for ``name``."""
    return optimizer_only_seconds(_training_graph(name).train_op, repeats)


def model_products_only_seconds(name: str, batch: int = 100, repeats: int = 100,
                                precision: str = 'float32') -> float:
    """`products_only_seconds` of the training graph `graph-models train` builds for ``name``."""
    return products_only_seconds(_training_graph(name).train_op, batch, repeats, precision)


def _training_graph(name: str):
    """The tensors of the training graph `graph-models train` builds for model ``name``."""
    from graph_models.nets import graphs
    from graph_models.nets.factory import ModelConfig
    return graphs.build_training_graph(ModelConfig(name), learning_rate=1e-3, seed=0)[1]
