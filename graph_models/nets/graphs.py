"""Training and inference graphs with the stable tensor names users rely on.

Every graph has:

==========  =====================================  ==============================
name        tensor                                 shape
==========  =====================================  ==============================
``Input``   float32 placeholder, pixels in [0, 1]  ``[batch] + input_shape``
``Logits``  float32 identity of the last layer     ``[batch, num_classes]``
``Output``  float32 softmax of ``Logits``          ``[batch, num_classes]``
==========  =====================================  ==============================

and the training graph adds ``Labels`` (int64 ``[batch]``), ``loss``, ``accuracy``,
``learning_rate`` and the ``global_step`` variable. Training graphs have a dynamic batch; an
inference graph has a fixed batch size (1 by default, as Edge TPU and TFLite want) and no dropout
op.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

from graph_models._tf import tf, v1
from graph_models.nets.factory import ModelConfig, get_network_fn

INPUT = 'Input'
LABELS = 'Labels'
LOGITS = 'Logits'
OUTPUT = 'Output'
TENSOR_NAMES = {'input': INPUT, 'labels': LABELS, 'logits': LOGITS, 'output': OUTPUT}

# A graph rewrite run in place on a finished forward graph (for example quantization); it gets
# the graph being built.
GraphRewrite = Callable[[tf.Graph], None]


@dataclasses.dataclass
class ModelTensors:
    """The forward pass of a model in a graph.

    Attributes:
      inputs: the ``Input`` placeholder.
      logits: the ``Logits`` tensor.
      output: the ``Output`` softmax tensor.
      end_points: layer name -> output tensor, from the builder.
    """

    inputs: tf.Tensor
    logits: tf.Tensor
    output: tf.Tensor
    end_points: Dict[str, tf.Tensor]


@dataclasses.dataclass
class TrainingTensors:
    """Everything the training loop runs.

    Attributes:
      model: the forward pass.
      labels: the ``Labels`` placeholder.
      loss: mean cross-entropy (scalar).
      accuracy: batch accuracy (scalar).
      learning_rate: the learning rate (scalar).
      global_step: the global step variable (incremented once per training step).
      train_op: one Adam step, after the batch-norm and other update ops.
    """

    model: ModelTensors
    labels: tf.Tensor
    loss: tf.Tensor
    accuracy: tf.Tensor
    learning_rate: tf.Tensor
    global_step: tf.Variable
    train_op: tf.Operation


def build_model(config: ModelConfig, *, is_training: bool, batch_size: Optional[int] = None,
                input_default: Optional[tf.Tensor] = None) -> ModelTensors:
    """Builds ``Input`` -> network -> ``Logits``, ``Output`` in the current default graph.

    Args:
      config: which network.
      is_training: training variant (dropout, batch statistics) or inference variant.
      batch_size: static batch size of ``Input``, or None for a dynamic batch.
      input_default: a tensor (for example an in-graph data pipeline's batch) that ``Input``
        yields when nothing is fed; ``Input`` is then a ``PlaceholderWithDefault``.

    Returns:
      The `ModelTensors`.
    """
    shape = [batch_size, *config.input_shape]
    if input_default is None:
        inputs = v1.placeholder(tf.float32, shape, name=INPUT)
    else:
        inputs = v1.placeholder_with_default(input_default, shape, name=INPUT)
    logits, end_points = get_network_fn(config, is_training)(inputs)
    logits = tf.identity(logits, name=LOGITS)
    output = tf.nn.softmax(logits, name=OUTPUT)
    return ModelTensors(inputs, logits, output, end_points)


def build_training_graph(config: ModelConfig, *, learning_rate: float, seed: int,
                         rewrite: Optional[GraphRewrite] = None,
                         input_pipeline: Optional[Callable[[], Tuple[tf.Tensor, tf.Tensor]]]
                         = None, device=None,
                         wrap_optimizer: Optional[Callable] = None
                         ) -> Tuple[tf.Graph, TrainingTensors]:
    """Builds the full training graph in a new `tf.Graph`.

    The optional ``rewrite`` runs after the loss exists and before the optimizer, which is
    where a quantization rewrite must happen.

    Args:
      config: which network.
      learning_rate: Adam learning rate.
      seed: graph-level random seed (initializers, dropout).
      rewrite: in-place graph rewrite applied to the forward graph and loss.
      input_pipeline: builds ``(images, labels)`` batch tensors inside the graph (for example
        `graph_models.training.loop.EpochPipeline`); ``Input`` and ``Labels`` then default to them,
        so a
        step needs no ``feed_dict``.
      device: a device name or function for every op (for example
        ``tf.compat.v1.train.replica_device_setter`` in a cluster).
      wrap_optimizer: takes the Adam optimizer and returns the one to use (for example a
        ``SyncReplicasOptimizer`` around it).

    Returns:
      The graph and its `TrainingTensors`.
    """
    graph = tf.Graph()
    with graph.as_default(), v1.device(device):
        v1.set_random_seed(seed)
        global_step = v1.train.get_or_create_global_step()
        if input_pipeline is None:
            model = build_model(config, is_training=True)
            labels = v1.placeholder(tf.int64, [None], name=LABELS)
        else:
            batch_images, batch_labels = input_pipeline()
            model = build_model(config, is_training=True, input_default=batch_images)
            labels = v1.placeholder_with_default(tf.cast(batch_labels, tf.int64), [None],
                                                 name=LABELS)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model.logits),
            name='loss')
        correct = tf.equal(tf.argmax(model.logits, axis=1), labels)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32), name='accuracy')
        if rewrite is not None:
            rewrite(graph)
        lr = tf.constant(learning_rate, tf.float32, name='learning_rate')
        optimizer = v1.train.AdamOptimizer(lr)
        if wrap_optimizer is not None:
            optimizer = wrap_optimizer(optimizer)
        # Batch-norm moving averages (and any rewrite's updates) run with every step.
        # GATE_NONE: the default GATE_OP groups each op's gradients (tf.tuple), which forces
        # the gradient of the first layer's input to be computed although nothing uses it (a
        # third of the MLP's matmul FLOPs). The values are the same; only that work is gone.
        with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
            train_op = optimizer.minimize(loss, global_step=global_step, name='train_op',
                                          gate_gradients=v1.train.Optimizer.GATE_NONE)
    return graph, TrainingTensors(model, labels, loss, accuracy, lr, global_step, train_op)


def build_inference_graph(config: ModelConfig, *, batch_size: Optional[int] = 1,
                          rewrite: Optional[GraphRewrite] = None
                          ) -> Tuple[tf.Graph, ModelTensors]:
    """Builds the inference graph in a new `tf.Graph`: no dropout, no labels, no optimizer.

    Args:
      config: which network.
      batch_size: static batch size (1 for export), or None for a dynamic batch.
      rewrite: in-place graph rewrite (for example the quantization eval rewrite).

    Returns:
      The graph and its `ModelTensors`. The graph also has the ``global_step`` variable so that
      checkpoints restore into it unchanged.
    """
    graph = tf.Graph()
    with graph.as_default():
        v1.train.get_or_create_global_step()
        model = build_model(config, is_training=False, batch_size=batch_size)
        if rewrite is not None:
            rewrite(graph)
    return graph, model
