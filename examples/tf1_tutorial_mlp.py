"""The classic TF1 tutorial MLP with quantization-aware training, as a TF1 user writes it.

Input (784) -> W1 (784x512, no bias) -> ReLU ``Layer_1`` -> W2 (512x10, no bias)
``Hypothesis`` -> softmax. The only change from TF 1.15 code is the import of
``create_training_graph`` / ``create_eval_graph`` (the latter called in
``tf1_common.export_eval_graph``, shared with the other example). Writes ``model.ckpt``
(+ ``.meta``), the eval graph's ``eval/model.ckpt`` (+ ``.meta``), ``frozen_eval.pb`` and
``model_int8.tflite``.

    python examples/tf1_tutorial_mlp.py --epochs 5
"""

import tf1_common
from tf1_common import tf, v1
from graph_models.quantize import create_training_graph


def build(graph):
    """The tutorial graph; returns its input, logits and softmax output.

    Everything the rewrite must see is built before it: an op added after
    ``create_*_graph`` reads the unquantized tensor.
    """
    with graph.as_default():
        X = v1.placeholder(tf.float32, [None, 784], name='Input')
        W1 = tf.Variable(v1.random_normal([784, 512], stddev=0.01), name='W1')
        W2 = tf.Variable(v1.random_normal([512, 10], stddev=0.01), name='W2')
        L1 = tf.nn.relu(tf.matmul(X, W1), name='Layer_1')
        H = tf.matmul(L1, W2, name='Hypothesis')
        output = tf.nn.softmax(H, name='Output')
    return X, H, output


def main():
    args = tf1_common.parse_args(__doc__.splitlines()[0], 'tf1_tutorial_mlp_out', 5)
    x_train, y_train, x_test, y_test = tf1_common.load_mnist(args.data_dir)
    x_train, x_test = x_train.reshape(-1, 784), x_test.reshape(-1, 784)

    # Training graph: model, loss, rewrite, then the optimizer.
    train_graph = tf.Graph()
    X, H, _ = build(train_graph)
    with train_graph.as_default():
        v1.set_random_seed(0)
        Y = v1.placeholder(tf.int64, [None], name='Labels')
        cost = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=H))
        create_training_graph(input_graph=train_graph, quant_delay=args.quant_delay)
        optimizer = v1.train.AdamOptimizer(learning_rate=0.001).minimize(cost)
    checkpoint = tf1_common.train_and_save(train_graph, X, Y, optimizer, cost, x_train, y_train,
                                           args)

    # Eval graph: rebuilt (its input and output, build's 1st and 3rd), rewritten for inference
    # (create_eval_graph), restored, frozen, converted to all-int8 and checked.
    return tf1_common.export_eval_graph('tf1_tutorial_mlp', lambda g: build(g)[0::2], checkpoint,
                                        x_test, y_test, args)

if __name__ == '__main__':
    raise SystemExit(main())
