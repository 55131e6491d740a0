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


# ---------------------------------------------------------------------------------------------
# Canonical TF1 programs with quantization-aware training (issue 20): written as their
# scripts write them, rewritten with create_training_graph / create_eval_graph.


def _qat_run(folder, data, build, *, steps, shape, scale=1.0, batch=50, eval_graph=True,
             one_hot=False):
    """Trains ``build(is_training)`` with QAT and saves it as its script would.

    ``build`` returns a dict with ``x``, ``labels``, ``loss`` and ``feeds`` (training values of
    its switches). The training graph is rewritten with ``create_training_graph``; with
    ``eval_graph`` the model is built again, rewritten with ``create_eval_graph``, restored and
    saved (the deployment checkpoint), else the training checkpoint is the result.

    Returns:
      The checkpoint prefix (its ``.meta`` beside it).
    """
    from graph_models import quantize
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        model = build(True)
        quantize.create_training_graph(graph)
        train = v1.train.AdamOptimizer(2e-3).minimize(
            model['loss'], global_step=v1.train.get_or_create_global_step())
        saver = v1.train.Saver()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for bx, by in _batches(data.train_images, data.train_labels, steps, batch):
                labels = np.eye(10, dtype=np.float32)[by] if one_hot else by
                session.run(train, {model['x']: _float(bx, shape) * scale,
                                    model['labels']: labels, **model['feeds']})
            os.makedirs(os.path.join(str(folder), 'train'), exist_ok=True)
            prefix = saver.save(session, os.path.join(str(folder), 'train', 'model.ckpt'))
    if not eval_graph:
        return prefix
    graph = tf.Graph()
    with graph.as_default():
        build(False)
        quantize.create_eval_graph(graph)
        saver = v1.train.Saver()
        with v1.Session() as session:
            saver.restore(session, prefix)
            return saver.save(session, os.path.join(str(folder), 'model.ckpt'))


def deep_mnist(folder, data, steps=120):
    """TF 1's deep-MNIST tutorial (mnist_deep.py, narrower): unnamed placeholders, the
    ``keep_prob`` placeholder of ``tf.name_scope('dropout')`` (op ``dropout/Placeholder``),
    one-hot labels, cross-entropy, argmax/equal accuracy and no softmax; QAT eval checkpoint.
    """
    def weight(shape):
        return tf.Variable(v1.truncated_normal(shape, stddev=0.1))

    def bias(shape):
        return tf.Variable(tf.constant(0.1, shape=shape))

    def build(is_training):
        x = v1.placeholder(tf.float32, [None, 784])
        y_ = v1.placeholder(tf.float32, [None, 10])
        with tf.name_scope('reshape'):
            image = tf.reshape(x, [-1, 28, 28, 1])
        with tf.name_scope('conv1'):
            h = tf.nn.relu(tf.nn.conv2d(image, weight([5, 5, 1, 8]), [1, 1, 1, 1], 'SAME')
                           + bias([8]))
        with tf.name_scope('pool1'):
            h = tf.nn.max_pool2d(h, 2, 2, 'SAME')
        with tf.name_scope('conv2'):
            h = tf.nn.relu(tf.nn.conv2d(h, weight([5, 5, 8, 16]), [1, 1, 1, 1], 'SAME')
                           + bias([16]))
        with tf.name_scope('pool2'):
            h = tf.nn.max_pool2d(h, 2, 2, 'SAME')
        with tf.name_scope('fc1'):
            flat = tf.reshape(h, [-1, 7 * 7 * 16])
            h = tf.nn.relu(tf.matmul(flat, weight([7 * 7 * 16, 64])) + bias([64]))
        with tf.name_scope('dropout'):
            keep_prob = v1.placeholder(tf.float32)
            h = v1.nn.dropout(h, keep_prob)
        with tf.name_scope('fc2'):
            y_conv = tf.matmul(h, weight([64, 10])) + bias([10])
        with tf.name_scope('loss'):
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_,
                                                                          logits=y_conv))
        with tf.name_scope('accuracy'):
            correct = tf.cast(tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1)), tf.float32)
            tf.reduce_mean(correct)
        return {'x': x, 'labels': y_, 'loss': loss, 'feeds': {keep_prob: 0.5}}
    return _qat_run(folder, data, build, steps=steps, shape=(784,), one_hot=True)


def speech_tiny_conv(folder, data, steps=150, feature_max=26.0):
    """speech_commands' ``tiny_conv`` as train.py builds it with ``--quantize``: the input
    ``fingerprint_input`` fake-quantized to the micro features' range [0, 26], a shape-less
    ``dropout_rate`` placeholder, ``create_training_graph``; the *training* checkpoint (what
    train.py saves) is the result. MNIST digits stand in for 28x28 spectrograms.
    """
    def build(is_training):
        fingerprint = v1.placeholder(tf.float32, [None, 784], name='fingerprint_input')
        quantized = tf.quantization.fake_quant_with_min_max_args(fingerprint, 0.0, feature_max)
        dropout_rate = v1.placeholder(tf.float32, name='dropout_rate')
        fingerprint_4d = tf.reshape(quantized, [-1, 28, 28, 1])
        first_weights = v1.get_variable(
            'first_weights', [10, 8, 1, 8],
            initializer=v1.truncated_normal_initializer(stddev=0.01))
        first_bias = v1.get_variable('first_bias', [8], initializer=v1.zeros_initializer())
        first_conv = tf.nn.conv2d(fingerprint_4d, first_weights, [1, 2, 2, 1], 'SAME') + \
            first_bias
        first_dropout = tf.nn.dropout(tf.nn.relu(first_conv), rate=dropout_rate)
        flattened = tf.reshape(first_dropout, [-1, 14 * 14 * 8])
        final_weights = v1.get_variable(
            'final_fc_weights', [14 * 14 * 8, 10],
            initializer=v1.truncated_normal_initializer(stddev=0.01))
        final_bias = v1.get_variable('final_fc_bias', [10], initializer=v1.zeros_initializer())
        logits = tf.matmul(flattened, final_weights) + final_bias
        ground_truth = v1.placeholder(tf.int64, [None], name='groundtruth_input')
        loss = v1.losses.sparse_softmax_cross_entropy(labels=ground_truth, logits=logits)
        predicted = tf.argmax(logits, 1)
        correct = tf.equal(predicted, ground_truth)
        tf.math.confusion_matrix(ground_truth, predicted, num_classes=10)
        tf.reduce_mean(tf.cast(correct, tf.float32))
        return {'x': fingerprint, 'labels': ground_truth, 'loss': loss,
                'feeds': {dropout_rate: 0.2}}
    return _qat_run(folder, data, build, steps=steps, shape=(784,), scale=feature_max,
                    eval_graph=False)


def fully_connected_feed(folder, data, steps=100, batch_size=100):
    """fully_connected_feed.py with mnist.py: placeholders with the fixed batch
    ``[100, 784]``, a ``Reshape`` to ``[100, -1]`` that hard-codes it again, ``in_top_k``
    evaluation (``InTopKV2``), no softmax; QAT, the training checkpoint is the result.
    """
    def build(is_training):
        images = v1.placeholder(tf.float32, shape=(batch_size, 784))
        labels = v1.placeholder(tf.int32, shape=(batch_size,))
        flat = tf.reshape(images, [batch_size, -1])
        net = flat
        for name, (fan_in, fan_out) in (('hidden1', (784, 32)), ('hidden2', (32, 16))):
            with tf.name_scope(name):
                weights = tf.Variable(v1.truncated_normal([fan_in, fan_out], stddev=0.05),
                                      name='weights')
                biases = tf.Variable(tf.zeros([fan_out]), name='biases')
                net = tf.nn.relu(tf.matmul(net, weights) + biases)
        with tf.name_scope('softmax_linear'):
            weights = tf.Variable(v1.truncated_normal([16, 10], stddev=0.25), name='weights')
            biases = tf.Variable(tf.zeros([10]), name='biases')
            logits = tf.matmul(net, weights) + biases
        loss = v1.losses.sparse_softmax_cross_entropy(labels=tf.cast(labels, tf.int64),
                                                      logits=logits)
        v1.summary.scalar('loss', loss)
        correct = v1.nn.in_top_k(logits, labels, 1)
        tf.reduce_sum(tf.cast(correct, tf.int32))
        return {'x': images, 'labels': labels, 'loss': loss, 'feeds': {}}
    return _qat_run(folder, data, build, steps=steps, shape=(784,), batch=batch_size,
                    eval_graph=False)


def atrous_mobilenet(folder, data, steps=120):
    """A slim-MobileNet-style net with an atrous depthwise layer (``rate=2``: SpaceToBatchND,
    DepthwiseConv2dNative, BatchToSpaceND), Relu6, average pool and softmax; QAT eval
    checkpoint.
    """
    def build(is_training):
        x = v1.placeholder(tf.float32, [None, 28, 28, 1], name='input')
        labels = v1.placeholder(tf.int64, [None], name='labels')
        w = v1.get_variable('Conv2d_0/weights', [3, 3, 1, 8])
        b = v1.get_variable('Conv2d_0/biases', [8], initializer=v1.zeros_initializer())
        net = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(x, w, [1, 2, 2, 1], 'SAME'), b))
        dw = v1.get_variable('Conv2d_1_depthwise/depthwise_weights', [3, 3, 8, 1])
        db = v1.get_variable('Conv2d_1_depthwise/biases', [8], initializer=v1.zeros_initializer())
        net = tf.nn.relu6(tf.nn.bias_add(
            v1.nn.depthwise_conv2d(net, dw, [1, 1, 1, 1], "SAME", rate=[2, 2]), db))
        pw = v1.get_variable('Conv2d_1_pointwise/weights', [1, 1, 8, 16])
        pb = v1.get_variable('Conv2d_1_pointwise/biases', [16], initializer=v1.zeros_initializer())
        net = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(net, pw, [1, 1, 1, 1], 'SAME'), pb))
        net = tf.nn.avg_pool2d(net, 14, 1, 'VALID')
        fw = v1.get_variable('Logits/weights', [1, 1, 16, 10])
        fb = v1.get_variable('Logits/biases', [10], initializer=v1.zeros_initializer())
        logits = tf.squeeze(tf.nn.bias_add(tf.nn.conv2d(net, fw, [1, 1, 1, 1], 'SAME'), fb),
                            [1, 2])
        tf.nn.softmax(logits, name='Predictions')
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                             logits=logits))
        return {'x': x, 'labels': labels, 'loss': loss, 'feeds': {}}
    return _qat_run(folder, data, build, steps=steps, shape=(28, 28, 1))
