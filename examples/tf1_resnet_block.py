"""A small residual CNN with batch norm, TF1 style, trained with quantization-aware training.

conv 3x3x16 stride 2 + batch norm + ReLU -> residual block (conv + BN + ReLU, conv + BN,
Add shortcut, ReLU) -> max-pool 2 -> flatten -> dense 10 (logits) -> softmax. Batch norm is
``tf.compat.v1.nn.fused_batch_norm`` with slim-style moving-average updates in UPDATE_OPS; the
rewrite folds it into the convolutions. Writes ``model.ckpt`` (+ ``.meta``),
``eval/model.ckpt`` (+ ``.meta``), ``frozen_eval.pb`` and an all-int8 ``model_int8.tflite``.

    python examples/tf1_resnet_block.py --epochs 5
"""

import tf1_common
from tf1_common import tf, v1
from graph_models.quantize import create_training_graph

DECAY, EPSILON = 0.99, 1e-3


def batch_norm(net, is_training):
    channels = net.shape[-1]
    gamma = v1.get_variable('gamma', [channels], initializer=v1.ones_initializer())
    beta = v1.get_variable('beta', [channels], initializer=v1.zeros_initializer())
    moving_mean = v1.get_variable('moving_mean', [channels], trainable=False,
                                  initializer=v1.zeros_initializer())
    moving_var = v1.get_variable('moving_variance', [channels], trainable=False,
                                 initializer=v1.ones_initializer())
    if not is_training:
        return v1.nn.fused_batch_norm(net, gamma, beta, moving_mean, moving_var,
                                      epsilon=EPSILON, is_training=False)[0]
    net, mean, var = v1.nn.fused_batch_norm(net, gamma, beta, epsilon=EPSILON,
                                            is_training=True)
    for moving, value in ((moving_mean, mean), (moving_var, var)):
        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS,
                             v1.assign_sub(moving, (moving - value) * (1 - DECAY)))
    return net


def conv_bn(net, filters, scope, is_training, stride=1, relu=True):
    with v1.variable_scope(scope):
        weights = v1.get_variable('weights', [3, 3, net.shape[-1], filters],
                                  initializer=v1.glorot_uniform_initializer())
        net = tf.nn.conv2d(net, weights, stride, 'SAME')
        with v1.variable_scope('BatchNorm'):
            net = batch_norm(net, is_training)
        return tf.nn.relu(net) if relu else net


def build(graph, is_training):
    """Returns the input, logits and softmax output."""
    with graph.as_default():
        X = v1.placeholder(tf.float32, [None, 28, 28, 1], name='Input')
        net = conv_bn(X, 16, 'conv1', is_training, stride=2)
        with v1.variable_scope('block1'):
            shortcut = net
            net = conv_bn(net, 16, 'conv_a', is_training)
            net = conv_bn(net, 16, 'conv_b', is_training, relu=False)
            net = tf.nn.relu(tf.add(net, shortcut, name='add'))
        net = tf.nn.max_pool2d(net, 2, 2, 'VALID')
        net = tf.reshape(net, [-1, 7 * 7 * 16])
        with v1.variable_scope('logits'):
            w = v1.get_variable('weights', [7 * 7 * 16, 10],
                                initializer=v1.glorot_uniform_initializer())
            b = v1.get_variable('biases', [10], initializer=v1.zeros_initializer())
            logits = tf.nn.bias_add(tf.matmul(net, w), b)
        output = tf.nn.softmax(logits, name='Output')
    return X, logits, output


def main():
    args = tf1_common.parse_args(__doc__.splitlines()[0], 'tf1_resnet_block_out', 5)
    x_train, y_train, x_test, y_test = tf1_common.load_mnist(args.data_dir)
    x_train, x_test = x_train[..., None], x_test[..., None]

    train_graph = tf.Graph()
    with train_graph.as_default():
        v1.set_random_seed(0)
        X, logits, _ = build(train_graph, is_training=True)
        Y = v1.placeholder(tf.int64, [None], name='Labels')
        cost = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=logits))
        create_training_graph(input_graph=train_graph, quant_delay=args.quant_delay)
        with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
            train_op = v1.train.AdamOptimizer(0.001).minimize(cost)
    checkpoint = tf1_common.train_and_save(train_graph, X, Y, train_op, cost, x_train, y_train,
                                           args)

    def build_eval(graph):
        inputs, _, output = build(graph, is_training=False)
        return inputs, output
    return tf1_common.export_eval_graph('tf1_resnet_block', build_eval, checkpoint, x_test,
                                        y_test, args)

if __name__ == '__main__':
    raise SystemExit(main())
