"""TF1 models written the way users write them (not with this project's builders).

Each builder trains a few steps on a dataset and writes what a TF1 user's script writes.
"""

import os

import numpy as np

from graph_models._tf import tf, v1


def _batches(images, labels, steps, batch=50, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        index = rng.integers(0, len(images), batch)
        yield images[index], labels[index]


def _float(images, shape):
    return (images.reshape((len(images),) + shape) / 255.0).astype(np.float32)


def tutorial_mlp(folder, data, steps=150, hypothesis_ranges=None):
    """The classic TF1 tutorial MLP: placeholders, get_variable, keep_prob dropout, Saver.

    Writes ``folder/model.ckpt`` (+ ``.meta``). With ``hypothesis_ranges=False`` the first
    layer gets fake quantization but the ``Hypothesis`` layer does not (a partial QAT rewrite).

    Returns:
      The checkpoint prefix.
    """
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        x = v1.placeholder(tf.float32, [None, 784], name='x')
        y_ = v1.placeholder(tf.int64, [None], name='y_')
        keep_prob = v1.placeholder(tf.float32, name='keep_prob')
        w1 = v1.get_variable('W1', [784, 64], initializer=v1.glorot_uniform_initializer())
        b1 = v1.get_variable('b1', [64], initializer=v1.zeros_initializer())
        w2 = v1.get_variable('W2', [64, 10], initializer=v1.glorot_uniform_initializer())
        b2 = v1.get_variable('b2', [10], initializer=v1.zeros_initializer())
        quant = hypothesis_ranges is not None
        if quant:
            w1 = tf.quantization.fake_quant_with_min_max_vars(
                w1, v1.get_variable('w1_min', initializer=-0.3),
                v1.get_variable('w1_max', initializer=0.2), name='W1_quant')
        h = tf.nn.relu(tf.matmul(x, w1) + b1, name='h1')
        if quant:
            h = tf.quantization.fake_quant_with_min_max_vars(
                h, v1.get_variable('h_min', initializer=0.0),
                v1.get_variable('h_max', initializer=6.0), name='h1_quant')
        h = v1.nn.dropout(h, keep_prob=keep_prob)
        logits = tf.add(tf.matmul(h, w2), b2, name='Hypothesis')
        probs = tf.nn.softmax(logits, name='Probs')
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y_, logits=logits), name='loss')
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(probs, 1), y_), tf.float32),
                                  name='accuracy')
        v1.summary.scalar('loss', loss)
        v1.summary.scalar('accuracy', accuracy)
        merged = v1.summary.merge_all()
        train = v1.train.AdamOptimizer(3e-3).minimize(loss)
        saver = v1.train.Saver()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for bx, by in _batches(data.train_images, data.train_labels, steps):
                session.run([train, merged], {x: _float(bx, (784,)), y_: by, keep_prob: 0.8})
            os.makedirs(folder, exist_ok=True)
            return saver.save(session, os.path.join(str(folder), 'model.ckpt'))


def saved_model_mlp(folder, data, steps=150):
    """An MLP with an ``is_training`` placeholder_with_default, saved with saved_model.Builder.

    Returns:
      The SavedModel folder (signature ``serving_default``: ``image`` -> ``probabilities``).
    """
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        image = v1.placeholder(tf.float32, [None, 28, 28, 1], name='image')
        labels = v1.placeholder(tf.int64, [None], name='labels')
        is_training = v1.placeholder_with_default(False, [], name='is_training')
        flat = tf.reshape(image, [-1, 784])
        w1 = v1.get_variable('dense/kernel', [784, 32])
        b1 = v1.get_variable('dense/bias', [32], initializer=v1.zeros_initializer())
        hidden = tf.nn.relu(tf.matmul(flat, w1) + b1)
        rate = tf.where(is_training, 0.3, 0.0)
        hidden = tf.nn.dropout(hidden, rate=rate)
        w2 = v1.get_variable('out/kernel', [32, 10])
        b2 = v1.get_variable('out/bias', [10], initializer=v1.zeros_initializer())
        logits = tf.matmul(hidden, w2) + b2
        probs = tf.nn.softmax(logits, name='probabilities')
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        train = v1.train.AdamOptimizer(3e-3).minimize(loss)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for bx, by in _batches(data.train_images, data.train_labels, steps):
                session.run(train, {image: _float(bx, (28, 28, 1)), labels: by,
                                    is_training: True})
            builder = v1.saved_model.Builder(str(folder))
            signature = v1.saved_model.predict_signature_def({'image': image},
                                                             {'probabilities': probs})
            builder.add_meta_graph_and_variables(
                session, [v1.saved_model.tag_constants.SERVING],
                signature_def_map={'serving_default': signature})
            builder.save()
    return str(folder)


def _conv(x, name, shape, quant, ranges):
    w = v1.get_variable(name + '/weights', shape)
    b = v1.get_variable(name + '/biases', [shape[-1]], initializer=v1.zeros_initializer())
    if quant:
        low, high = ranges
        w = tf.quantization.fake_quant_with_min_max_vars(
            w, v1.get_variable(name + '/w_min', initializer=low),
            v1.get_variable(name + '/w_max', initializer=high))
    return tf.nn.bias_add(tf.nn.conv2d(x, w, [1, 1, 1, 1], 'SAME'), b)


def _act_quant(x, name, quant, high=6.0, low=0.0):
    if not quant:
        return x
    return tf.quantization.fake_quant_with_min_max_vars(
        x, v1.get_variable(name + '/a_min', initializer=low, trainable=False),
        v1.get_variable(name + '/a_max', initializer=high, trainable=False))


def cnn_pb(path, data, steps=120, qat=False):
    """A CNN with input ``x`` [None, 28, 28, 1] (residual block; fake quant if ``qat``),
    frozen with freeze_session to ``path``. QAT weight ranges are asymmetric on purpose.

    Returns:
      ``(path, output name)``.
    """
    from freeze.freeze_graph import freeze_session, write_graph_def
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        x = v1.placeholder(tf.float32, [None, 28, 28, 1], name='x')
        labels = v1.placeholder(tf.int64, [None], name='labels')
        q = _act_quant(x, 'input', qat, 1.0)
        c1 = _act_quant(tf.nn.relu(_conv(q, 'conv1', [3, 3, 1, 8], qat, (-0.4, 0.3))),
                        'conv1', qat)
        pooled = tf.nn.max_pool2d(c1, 2, 2, 'VALID')
        c2 = _act_quant(_conv(pooled, 'conv2', [3, 3, 8, 8], qat, (-0.3, 0.35)), 'conv2',
                        qat, 6.0, -6.0)
        residual = _act_quant(tf.nn.relu(c2 + pooled), 'res', qat, 12.0)
        flat = tf.reshape(residual, [-1, 14 * 14 * 8])
        w = v1.get_variable('fc/weights', [14 * 14 * 8, 10])
        if qat:
            w = tf.quantization.fake_quant_with_min_max_vars(
                w, v1.get_variable('fc/w_min', initializer=-0.2),
                v1.get_variable('fc/w_max', initializer=0.25))
        b = v1.get_variable('fc/biases', [10], initializer=v1.zeros_initializer())
        logits = _act_quant(tf.matmul(flat, w) + b, 'fc', qat, 20.0, -20.0)
        probs = tf.nn.softmax(logits, name='probs')
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        train = v1.train.AdamOptimizer(2e-3).minimize(loss)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for bx, by in _batches(data.train_images, data.train_labels, steps):
                session.run(train, {x: _float(bx, (28, 28, 1)), labels: by})
            graph_def = freeze_session(session, output_names=['probs'])
    write_graph_def(graph_def, str(path))
    return str(path), 'probs'
