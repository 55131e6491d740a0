"""The convolutional network of the Keras seed, in low-level ops.

conv 3x3x32 ReLU, max-pool 2, conv 3x3x64 ReLU, max-pool 2, conv 3x3x64 ReLU, flatten,
dense 64 ReLU, dense ``num_classes``: 93,322 parameters for MNIST (VALID padding throughout).
The layers come from `graph_models.nets.architectures` (shared with the Keras twins).
"""

from typing import Dict, Tuple

from graph_models.nets import architectures
from graph_models.nets import layers
from graph_models._tf import tf, v1


def cnn(inputs: tf.Tensor, num_classes: int = 10, is_training: bool = False,
        scope: str = 'cnn', *, batch_norm: bool = False,
        dropout_rate: float = 0.0) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """Builds the CNN classifier.

    Args:
      inputs: float tensor ``[batch, 28, 28, 1]``, pixels in [0, 1].
      num_classes: number of output classes.
      is_training: whether this is the training graph (batch statistics, dropout).
      scope: variable scope of the whole network.
      batch_norm: batch norm after each convolution (in place of its bias); the quantization
        rewrite folds it into the convolution weights.
      dropout_rate: dropout rate after ``fc1`` in training; 0 for none.

    Returns:
      logits: float tensor ``[batch, num_classes]``.
      end_points: layer name -> output tensor (``conv1``, ``pool1``, ``conv2``, ``pool2``,
        ``conv3``, ``flatten``, ``fc1``, ``logits``).
    """
    end_points = {}
    specs = architectures.layer_specs('cnn', num_classes, dropout_rate=dropout_rate)
    with v1.variable_scope(scope, values=[inputs]):
        net = layers.build(inputs, specs, is_training=is_training,
                                        batch_norm=batch_norm, end_points=end_points)
    return net, end_points
