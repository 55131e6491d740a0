"""The multi-layer perceptron: ``tf.matmul`` + bias + ReLU layers, then linear logits.

The layers come from `graph_models.nets.architectures` (shared with the Keras twins).
"""

from typing import Dict, Sequence, Tuple

from graph_models.nets import architectures
from graph_models.nets import layers
from graph_models._tf import tf, v1


def mlp(inputs: tf.Tensor, num_classes: int = 10, is_training: bool = False,
        scope: str = 'mlp', *, hidden_sizes: Sequence[int] = (512,),
        dropout_rate: float = 0.0) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """Builds an MLP classifier.

    Layers are ``fc1 .. fcN`` (ReLU, dropout after each in training) and ``logits`` (linear).
    With the default ``hidden_sizes=(512,)`` it is the TF1 reference 784-512-10 network
    (407,050 parameters).

    Args:
      inputs: float tensor ``[batch, 784]``, pixels in [0, 1].
      num_classes: number of output classes.
      is_training: whether this is the training graph (dropout only exists there).
      scope: variable scope of the whole network.
      hidden_sizes: units of each hidden layer.
      dropout_rate: dropout rate after each hidden layer in training; 0 for none.

    Returns:
      logits: float tensor ``[batch, num_classes]``.
      end_points: layer name -> output tensor (``fc1``, ..., ``logits``).
    """
    end_points = {}
    specs = architectures.layer_specs('mlp', num_classes, hidden_sizes=hidden_sizes,
                                      dropout_rate=dropout_rate)
    with v1.variable_scope(scope, values=[inputs]):
        net = layers.build(inputs, specs, is_training=is_training,
                                        end_points=end_points)
    return net, end_points
