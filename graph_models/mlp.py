"""The multi-layer perceptron: ``tf.matmul`` + bias + ReLU layers, then linear logits."""

from typing import Dict, Sequence, Tuple

from graph_models import layers
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
    with v1.variable_scope(scope, values=[inputs]):
        net = inputs
        for i, units in enumerate(hidden_sizes, start=1):
            name = f'fc{i}'
            net = layers.dense(net, units, scope=name)
            end_points[name] = net
            net = layers.dropout(net, dropout_rate, is_training=is_training,
                                 scope=f'dropout{i}')
        logits = layers.dense(net, num_classes, scope='logits', activation=None)
        end_points['logits'] = logits
    return logits, end_points
