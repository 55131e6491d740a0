"""The classic TF1 tutorial MLP with quantization-aware training, as a TF1 user writes it.

Input (784) -> W1 (784x512, no bias) -> ReLU ``Layer_1`` -> W2 (512x10, no bias)
``Hypothesis`` -> softmax. The only change from TF 1.15 code is the import of
``create_training_graph`` / ``create_eval_graph``. Writes ``model.ckpt`` (+ ``.meta``), the
eval graph's ``eval/model.ckpt`` (+ ``.meta``), ``frozen_eval.pb`` and ``model_int8.tflite``.

    python examples/tf1_tutorial_mlp.py --epochs 5
"""

import os

import numpy as np

import tf1_common
from tf1_common import tf, v1
from graph_models.quantize import create_eval_graph, create_training_graph


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
    os.makedirs(os.path.join(args.out_dir, 'eval'), exist_ok=True)
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
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            rng = np.random.default_rng(0)
            for epoch in range(args.epochs):
                order = rng.permutation(len(x_train))
                for start in range(0, len(order), args.batch_size):
                    batch = order[start:start + args.batch_size]
                    _, c = sess.run([optimizer, cost], {X: x_train[batch], Y: y_train[batch]})
                print(f'epoch {epoch + 1}: cost {c:.4f}')
            checkpoint = saver.save(sess, os.path.join(args.out_dir, 'model.ckpt'))

    # Eval graph: rebuilt, rewritten for inference, restored, saved, frozen, converted.
    eval_graph = tf.Graph()
    X, H, output = build(eval_graph)
    with eval_graph.as_default():
        create_eval_graph(input_graph=eval_graph)
        saver = v1.train.Saver()
        with v1.Session() as sess:
            saver.restore(sess, checkpoint)
            saver.save(sess, os.path.join(args.out_dir, 'eval', 'model.ckpt'))
            float_preds = np.argmax(sess.run(output, {X: x_test}), axis=1)
            tf1_common.symmetrize_weight_ranges(sess)
            model = tf1_common.freeze_and_convert(sess, 'Output', [1, 784], args.out_dir)
    int8_preds = tf1_common.int8_predictions(model, x_test)
    bad = tf1_common.report('tf1_tutorial_mlp', eval_graph, float_preds, int8_preds, y_test,
                            model)
    return 1 if bad else 0


if __name__ == '__main__':
    raise SystemExit(main())
