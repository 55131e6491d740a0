"""Low-level, variable-scoped layers built from ``tf.matmul``, ``tf.nn.conv2d`` and friends.

Every layer opens its own ``tf.compat.v1.variable_scope`` named by the caller, creates its
variables with ``tf.compat.v1.get_variable`` (Glorot-uniform weights, zero biases) and gives its
ops fixed names, so a layer called ``fc1`` under ``mlp`` always yields ``mlp/fc1/weights``,
``mlp/fc1/MatMul``, ``mlp/fc1/BiasAdd`` and ``mlp/fc1/Relu``. The quantization rewrite matches on
exactly these op patterns (weights -> MatMul/Conv2D -> BiasAdd or batch norm -> Relu).
"""

from typing import Callable, Dict, Optional, Sequence

from graph_models._tf import tf, v1

# Keras' BatchNormalization defaults, so the graph and Keras twins behave alike.
BATCH_NORM_DECAY = 0.99
BATCH_NORM_EPSILON = 1e-3

Activation = Optional[Callable[..., tf.Tensor]]


def _weights(shape):
    return v1.get_variable('weights', shape, dtype=tf.float32,
                           initializer=v1.glorot_uniform_initializer())


def _biases(size):
    return v1.get_variable('biases', [size], dtype=tf.float32,
                           initializer=v1.zeros_initializer())


def dense(inputs: tf.Tensor, units: int, *, scope: str,
          activation: Activation = tf.nn.relu) -> tf.Tensor:
    """A fully connected layer: ``activation(inputs @ weights + biases)``.

    Args:
      inputs: float tensor ``[batch, in_units]``.
      units: number of output units.
      scope: variable scope of the layer (for example ``fc1``).
      activation: activation function, or None for a linear layer (logits).

    Returns:
      float tensor ``[batch, units]``.
    """
    with v1.variable_scope(scope):
        weights = _weights([inputs.shape[-1], units])
        net = tf.nn.bias_add(tf.matmul(inputs, weights), _biases(units))
        if activation is not None:
            net = activation(net)
    return net


def batch_norm(inputs: tf.Tensor, *, is_training: bool, scope: str = 'BatchNorm',
               decay: float = BATCH_NORM_DECAY, epsilon: float = BATCH_NORM_EPSILON) -> tf.Tensor:
    """Batch normalization over the channel axis with ``FusedBatchNormV3``.

    In training, normalizes with the batch statistics and adds the moving-average updates of
    ``moving_mean`` and ``moving_variance`` to ``tf.compat.v1.GraphKeys.UPDATE_OPS`` (the
    training op must depend on them); otherwise normalizes with the moving statistics.

    Args:
      inputs: float tensor ``[batch, height, width, channels]``.
      is_training: whether to use (and update from) batch statistics.
      scope: variable scope; variables ``gamma``, ``beta``, ``moving_mean``,
        ``moving_variance``.
      decay: moving-average decay.
      epsilon: added to the variance for numerical stability.

    Returns:
      float tensor of the same shape as ``inputs``.
    """
    channels = inputs.shape[-1]
    with v1.variable_scope(scope):
        gamma = v1.get_variable('gamma', [channels], initializer=v1.ones_initializer())
        beta = v1.get_variable('beta', [channels], initializer=v1.zeros_initializer())
        moving_mean = v1.get_variable(
            'moving_mean', [channels], initializer=v1.zeros_initializer(), trainable=False,
            collections=[v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MOVING_AVERAGE_VARIABLES])
        moving_variance = v1.get_variable(
            'moving_variance', [channels], initializer=v1.ones_initializer(), trainable=False,
            collections=[v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MOVING_AVERAGE_VARIABLES])
        if not is_training:
            net, _, _ = v1.nn.fused_batch_norm(inputs, gamma, beta, mean=moving_mean,
                                               variance=moving_variance, epsilon=epsilon,
                                               is_training=False, name='FusedBatchNorm')
            return net
        # Counts the moving-average updates, for zero debiasing (training graphs only).
        num_updates = v1.get_variable(
            'num_updates', [], initializer=v1.zeros_initializer(), trainable=False,
            collections=[v1.GraphKeys.GLOBAL_VARIABLES])
        net, mean, variance = v1.nn.fused_batch_norm(inputs, gamma, beta, epsilon=epsilon,
                                                     is_training=True, name='FusedBatchNorm')
        with tf.name_scope('moving_updates'):
            # Zero-debiased exponential moving average, held directly in moving_mean and
            # moving_variance: m_t = m_{t-1} - (m_{t-1} - x_t) * (1 - d) / (1 - d^t) equals
            # the usual biased average divided by (1 - d^t). The first update takes the batch
            # statistics as they are, so the initial 0 / 1 never leaks into the estimate (with
            # the plain average, 0.99^300 = 5% of the initial variance 1.0 was still there
            # after 300 steps, far above conv1's real variance of about 0.01).
            count = v1.assign_add(num_updates, 1.0, name='count')
            rate = (1.0 - decay) / (1.0 - tf.pow(tf.constant(decay, tf.float32), count))
            for var, value in ((moving_mean, mean), (moving_variance, variance)):
                update = v1.assign_sub(var, (var - value) * rate,
                                       name='update_' + var.op.name.split('/')[-1])
                v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, update)
    return net


def conv2d(inputs: tf.Tensor, filters: int, kernel_size: int, *, scope: str,
           is_training: bool = False, use_batch_norm: bool = False,
           activation: Activation = tf.nn.relu) -> tf.Tensor:
    """A 2-D convolution with VALID padding, stride 1, then bias (or batch norm) and ReLU.

    With batch norm the convolution has no bias (batch norm's ``beta`` takes its place), as in
    slim's ``conv2d(normalizer_fn=batch_norm)``.

    Args:
      inputs: float tensor ``[batch, height, width, in_channels]``.
      filters: number of output channels.
      kernel_size: height and width of the square kernel.
      scope: variable scope of the layer (for example ``conv1``).
      is_training: passed to batch norm.
      use_batch_norm: batch norm after the convolution instead of a bias.
      activation: activation function, or None.

    Returns:
      float tensor ``[batch, height - kernel_size + 1, width - kernel_size + 1, filters]``.
    """
    with v1.variable_scope(scope):
        weights = _weights([kernel_size, kernel_size, inputs.shape[-1], filters])
        net = tf.nn.conv2d(inputs, weights, strides=1, padding='VALID', name='Conv2D')
        if use_batch_norm:
            net = batch_norm(net, is_training=is_training)
        else:
            net = tf.nn.bias_add(net, _biases(filters))
        if activation is not None:
            net = activation(net)
    return net


def max_pool(inputs: tf.Tensor, *, scope: str, size: int = 2) -> tf.Tensor:
    """Max pooling with a ``size`` x ``size`` window and stride, VALID padding."""
    return tf.nn.max_pool2d(inputs, ksize=size, strides=size, padding='VALID', name=scope)


def flatten(inputs: tf.Tensor, *, scope: str = 'Flatten') -> tf.Tensor:
    """Reshapes ``[batch, h, w, c]`` to ``[batch, h * w * c]`` (static feature size)."""
    features = 1
    for dim in inputs.shape[1:]:
        features *= int(dim)
    return tf.reshape(inputs, [-1, features], name=scope)


def dropout(inputs: tf.Tensor, rate: float, *, is_training: bool,
            scope: str = 'Dropout') -> tf.Tensor:
    """Dropout that exists only in a training graph.

    An inference graph never contains a dropout op: one left behind a switch would survive into
    a ``.tflite`` as RANDOM_UNIFORM.

    Args:
      inputs: float tensor.
      rate: fraction of units to drop, in ``[0, 1)``; 0 adds nothing.
      is_training: False returns ``inputs`` unchanged.
      scope: name scope of the dropout ops.

    Returns:
      float tensor of the same shape.
    """
    if not is_training or rate <= 0.0:
        return inputs
    return tf.nn.dropout(inputs, rate=rate, name=scope)


def build(inputs: tf.Tensor, specs: Sequence, *, is_training: bool, batch_norm: bool = False,
          end_points: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Applies the layers in order inside the caller's variable scope.

    Args:
      inputs: float input tensor (``[batch, 784]`` or ``[batch, 28, 28, 1]``).
      specs: `architectures.LayerSpec` tuple from `architectures.layer_specs`.
      is_training: training graph (dropout, batch statistics).
      batch_norm: batch norm after each convolution instead of its bias.
      end_points: filled with layer name -> output (dropout layers are not end points).

    Returns:
      The last layer's output (the logits).
    """
    net = inputs
    for spec in specs:
        if spec.kind == 'conv':
            net = conv2d(net, spec.size, spec.kernel, scope=spec.name,
                                is_training=is_training, use_batch_norm=batch_norm,
                                activation=tf.nn.relu if spec.relu else None)
        elif spec.kind == 'pool':
            net = max_pool(net, scope=spec.name, size=spec.size)
        elif spec.kind == 'flatten':
            net = flatten(net)
        elif spec.kind == 'dense':
            net = dense(net, spec.size, scope=spec.name,
                               activation=tf.nn.relu if spec.relu else None)
        elif spec.kind == 'dropout':
            net = dropout(net, spec.rate, is_training=is_training, scope=spec.name)
            continue
        else:
            raise ValueError(f'unknown layer kind {spec.kind!r}')
        end_points[spec.name] = net
    return net
