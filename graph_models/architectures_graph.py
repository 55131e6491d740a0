"""Builds the graph layers of an `architectures.LayerSpec` list with `graph_models.layers`."""

from typing import Dict, Sequence

from graph_models import layers
from graph_models._tf import tf


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
            net = layers.conv2d(net, spec.size, spec.kernel, scope=spec.name,
                                is_training=is_training, use_batch_norm=batch_norm,
                                activation=tf.nn.relu if spec.relu else None)
        elif spec.kind == 'pool':
            net = layers.max_pool(net, scope=spec.name, size=spec.size)
        elif spec.kind == 'flatten':
            net = layers.flatten(net)
        elif spec.kind == 'dense':
            net = layers.dense(net, spec.size, scope=spec.name,
                               activation=tf.nn.relu if spec.relu else None)
        elif spec.kind == 'dropout':
            net = layers.dropout(net, spec.rate, is_training=is_training, scope=spec.name)
            continue
        else:
            raise ValueError(f'unknown layer kind {spec.kind!r}')
        end_points[spec.name] = net
    return net
