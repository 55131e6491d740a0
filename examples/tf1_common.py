"""What both TF1 examples share: MNIST loading, the feed_dict training loop, and the eval
graph's restore, freeze, int8 conversion and check.

A TF1 user would have these few lines in their own script; here they live once.
"""

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from graph_models.data import load_idx_folder  # noqa: E402
from graph_models.quantize import create_eval_graph  # noqa: E402
from graph_models.export import symmetrize_weight_ranges  # noqa: E402
from graph_models._tf import tf, v1  # noqa: E402

DEFAULT_DATA = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'mnist-10k')


def parse_args(description, default_out, epochs):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--data-dir', default=DEFAULT_DATA,
                        help='MNIST IDX folder (default: ../shared/data/mnist-10k)')
    parser.add_argument('--out-dir', default=default_out, help='where checkpoints and models go')
    parser.add_argument('--epochs', type=int, default=epochs)
    parser.add_argument('--batch-size', type=int, default=100)
    parser.add_argument('--quant-delay', type=int, default=0,
                        help='training steps before fake quantization starts')
    return parser.parse_args()


def load_mnist(folder):
    """Float images in [0, 1] ``[N, 28, 28]`` and int labels ``[N]``, train then test."""
    try:
        data = load_idx_folder(folder)
    except Exception as e:  # DataError: one line, no traceback.
        print(f'error: {e}; pass --data-dir with an MNIST IDX folder', file=sys.stderr)
        raise SystemExit(2) from None
    return (data.train_images.astype(np.float32) / 255.0, data.train_labels,
            data.test_images.astype(np.float32) / 255.0, data.test_labels)


def freeze_and_convert(session, output_name, input_shape, out_dir):
    """Freezes the eval session's graph to ``frozen_eval.pb`` and converts it to an all-int8
    ``model_int8.tflite`` (input real = (q + 128) / 255). Returns the flatbuffer."""
    frozen = v1.graph_util.convert_variables_to_constants(
        session, session.graph.as_graph_def(), [output_name])
    pb = os.path.join(out_dir, 'frozen_eval.pb')
    with open(pb, 'wb') as f:
        f.write(frozen.SerializeToString())
    converter = v1.lite.TFLiteConverter.from_frozen_graph(
        pb, ['Input'], [output_name], input_shapes={'Input': input_shape})
    converter.inference_type = tf.int8
    converter.quantized_input_stats = {'Input': (-128.0, 255.0)}
    model = converter.convert()
    with open(os.path.join(out_dir, 'model_int8.tflite'), 'wb') as f:
        f.write(model)
    return model


def float_tensors(model):
    """Tensors of a .tflite that are neither int8 nor int32 biases (should be none)."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model)
    bad = []
    for t in interpreter.get_tensor_details():
        if t['dtype'] == np.int8:
            continue
        if t['dtype'] == np.int32 and len(t['shape']) == 1 and 'shape' not in t['name'].lower():
            continue  # int32 biases (and shape operands)
        if t['dtype'] == np.int32 and t['name'].lower().endswith(('shape', 'const')):
            continue
        bad.append((t['name'], np.dtype(t['dtype']).name))
    return bad


def int8_predictions(model, images):
    """Top-1 classes of the int8 model for float images in [0, 1]."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    scale, zero = inp['quantization']
    preds = []
    for image in images:
        q = np.clip(np.round(image / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp['index'], q.reshape(inp['shape']))
        interpreter.invoke()
        preds.append(int(np.argmax(interpreter.get_tensor(out['index'])[0])))
    return np.array(preds)


def report(name, graph, float_preds, int8_preds, labels, model):
    fake_quants = sum(op.type.startswith('FakeQuantWithMinMax') for op in graph.get_operations())
    bad = float_tensors(model)
    print(f'{name}: {fake_quants} FakeQuant ops in the eval graph')
    print(f'{name}: QAT eval graph (TF, float32) accuracy {np.mean(float_preds == labels):.4f}')
    print(f'{name}: int8 .tflite (LiteRT) accuracy {np.mean(int8_preds == labels):.4f}, '
          f'top-1 agreement {np.mean(int8_preds == float_preds):.4f}')
    print(f'{name}: non-int8 tensors other than int32 biases: {bad or "none"}')
    return bad


def train_and_save(graph, inputs, labels, train_op, cost, x_train, y_train, args):
    """Trains ``graph`` from fresh variables: ``args.epochs`` epochs of shuffled mini-batches
    fed to ``inputs``/``labels``; saves ``model.ckpt`` (+ ``.meta``) in ``args.out_dir``.

    Returns:
      The checkpoint prefix.
    """
    with graph.as_default():
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            rng = np.random.default_rng(0)
            for epoch in range(args.epochs):
                order = rng.permutation(len(x_train))
                for start in range(0, len(order), args.batch_size):
                    batch = order[start:start + args.batch_size]
                    _, c = sess.run([train_op, cost],
                                    {inputs: x_train[batch], labels: y_train[batch]})
                print(f'epoch {epoch + 1}: cost {c:.4f}')
            return saver.save(sess, os.path.join(args.out_dir, 'model.ckpt'))


def export_eval_graph(name, build_eval, checkpoint, x_test, y_test, args):
    """Builds the eval graph with ``build_eval(graph) -> (inputs, output)``, rewrites it with
    `create_eval_graph`, restores ``checkpoint`` into it, saves it as ``eval/model.ckpt``,
    scores it, freezes it, converts it to all-int8 and checks the model.

    Returns:
      The exit status: 0, or 1 if the ``.tflite`` has float tensors.
    """
    graph = tf.Graph()
    inputs, output = build_eval(graph)
    with graph.as_default():
        create_eval_graph(input_graph=graph)
    os.makedirs(os.path.join(args.out_dir, 'eval'), exist_ok=True)
    with graph.as_default():
        saver = v1.train.Saver()
        with v1.Session() as sess:
            saver.restore(sess, checkpoint)
            saver.save(sess, os.path.join(args.out_dir, 'eval', 'model.ckpt'))
            float_preds = np.concatenate([
                np.argmax(sess.run(output, {inputs: x_test[i:i + 500]}), axis=1)
                for i in range(0, len(x_test), 500)])
            symmetrize_weight_ranges(sess)
            model = freeze_and_convert(sess, output.op.name, [1, *x_test.shape[1:]],
                                       args.out_dir)
    int8_preds = int8_predictions(model, x_test)
    return 1 if report(name, graph, float_preds, int8_preds, y_test, model) else 0
