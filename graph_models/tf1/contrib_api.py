"""What ``import tensorflow as tf`` is in TF 1.x mode: ``tf.compat.v1`` plus ``tf.contrib``.

`tensorflow_proxy` builds the tree of `graph_models.tf1.module.ProxyModule` s:

* ``tf`` is ``tf.compat.v1`` (``tf.app``, ``tf.flags``, ``tf.gfile``, ``tf.logging``,
  ``tf.train``, ``tf.summary.FileWriter``, ``tf.layers`` are all there); ``tf.compat.v1`` is
  ``tf`` itself, ``tf.compat.v2`` the real one; ``tf.keras`` is Keras 2 (`graph_models.tf1.keras2`);
* ``tf.contrib.quantize`` is `graph_models.quantize`; ``tf.contrib.slim``, ``.layers`` and
  ``.framework`` are ``tf_slim`` (its initializers, regularizers, layers, arg scopes and
  variable helpers are contrib's; ``nest``, ``sort``, ``argsort``, ``is_tensor`` are TF's own, as
  is ``tf.contrib.util``); ``tf.contrib.lite`` converts through the ``freeze`` toolkit
  (`graph_models.tf1.contrib_lite`); ``tf.contrib.rnn`` is ``tf.compat.v1.nn.rnn_cell`` with
  ``static_rnn`` and friends; ``tf.contrib.keras`` is Keras 2;
* ``tf.examples.tutorials.mnist.input_data`` is `graph_models.tf1.input_data`, ``...mnist.mnist``
  (the tutorials' model) `graph_models.tf1.tutorials_mnist`;
* what TF 2.21 has no equivalent for raises `graph_models.tf1.module.TF1APIError` naming the
  nearest replacement (`CONTRIB_MISSING`, `TF_MISSING`).
"""

import importlib
from typing import Dict

from graph_models.tf1.module import Override, ProxyModule, require_keras2

# tf.contrib modules with no TF 2.21 equivalent, and what to use instead.
CONTRIB_MISSING: Dict[str, str] = {
    'learn': 'tf.contrib.learn (and its Estimators) is gone; write a tf.Session training loop '
             '(tf.compat.v1) or use Keras 2 (tf.keras Model.fit)',
    'training': 'tf.contrib.training is gone; for HParams use a dict or '
                'argparse.Namespace, for batching tf.data or tf.compat.v1.train.batch',
    'estimator': 'tf.contrib.estimator is gone (TF 2.16 removed tf.estimator); use a '
                 'tf.Session training loop or Keras 2 (tf.keras Model.fit)',
    'data': 'tf.contrib.data moved to tf.data and tf.data.experimental',
    'distributions': 'tf.contrib.distributions moved to TensorFlow Probability '
                     '(tensorflow_probability.distributions)',
    'metrics': 'use tf.metrics (tf.compat.v1.metrics) for streaming metrics',
    'losses': 'use tf.losses (tf.compat.v1.losses)',
    'seq2seq': 'tf.contrib.seq2seq is gone; its successor was tensorflow_addons.seq2seq '
               '(archived); write the decoder with tf.compat.v1.nn.dynamic_rnn',
    'crf': 'tf.contrib.crf is gone; its successor was tensorflow_addons.text.crf (archived)',
    'image': 'use tf.image; rotate/transform moved to tensorflow_addons.image (archived)',
    'opt': 'use the optimizers of tf.train (tf.compat.v1.train) or tf.keras.optimizers',
    'summary': 'tf.contrib.summary (TF 2 style summaries) is tf.compat.v2.summary',
    'eager': 'eager execution is TF 2\'s default; graph-models run disables it (TF 1.x '
             'semantics), use python -c without graph-models for eager code',
    'tpu': 'tf.contrib.tpu is gone; use tf.distribute.TPUStrategy',
    'cudnn_rnn': 'use tf.keras.layers.LSTM / GRU (cuDNN kernels are chosen automatically)',
    'predictor': 'load a SavedModel with tf.compat.v1.saved_model.load, or export with '
                 'graph-models export and run the .tflite',
    'gan': 'tf.contrib.gan became the archived tensorflow_gan package',
    'graph_editor': 'tf.contrib.graph_editor is gone; edit the GraphDef (tf.GraphDef protos) '
                    'or rebuild the graph',
    'tensorboard': 'use tf.summary.FileWriter and TensorBoard\'s own projector plugin',
    'timeseries': 'tf.contrib.timeseries is gone; no replacement in TensorFlow',
    'factorization': 'tf.contrib.factorization is gone; use sklearn.cluster for k-means',
    'keras_applications': 'use tf.keras.applications',
}

# tf.contrib.rnn cells that tf.compat.v1.nn.rnn_cell no longer has.
_RNN_HINT = ('the remaining TF 1.x cells are tf.compat.v1.nn.rnn_cell.BasicLSTMCell, '
             'LSTMCell, GRUCell, BasicRNNCell, MultiRNNCell, DropoutWrapper, ResidualWrapper, '
             'DeviceWrapper; otherwise use tf.keras.layers.LSTM / GRU / RNN')

# Top-level TF 1.x names TF 2.21's tf.compat.v1 dropped.
TF_MISSING: Dict[str, str] = {
    'estimator': 'TF 2.16 removed tf.estimator; write a tf.Session training loop '
                 '(tf.compat.v1) or use Keras 2 (tf.keras Model.fit)',
}


# tf.contrib.framework / tf.contrib.util names that TF 1.x moved into TensorFlow proper.
_FRAMEWORK_CORE = {'nest': 'nest', 'sort': 'sort', 'argsort': 'argsort',
                   'is_tensor': 'is_tensor'}
_UTIL_CORE = {'constant_value': 'get_static_value', 'make_tensor_proto': 'make_tensor_proto',
              'make_ndarray': 'make_ndarray'}


def resolve_path(module, dotted: str):
    for part in dotted.split('.'):
        module = getattr(module, part)
    return module


def _module(name: str):
    return importlib.import_module(name)


def _contrib_proxy() -> ProxyModule:
    from graph_models.tf1 import keras2
    slim = Override(lambda: ProxyModule('tensorflow.contrib.slim', _module('tf_slim'),
                                        'tf_slim'), 'tf_slim')
    layers = Override(lambda: ProxyModule('tensorflow.contrib.layers', _module('tf_slim'),
                                          'tf_slim'), 'tf_slim (tf_slim.layers, initializers, '
                                                      'regularizers)')
    v1 = _module('freeze._tf').v1

    def core(names):  # tf.contrib names that moved into TensorFlow proper.
        return {name: Override(lambda target=target: resolve_path(v1, target),
                               f'tf.compat.v1.{target}') for name, target in names.items()}

    framework = Override(lambda: ProxyModule('tensorflow.contrib.framework', _module('tf_slim'),
                                             'tf_slim', overrides=core(_FRAMEWORK_CORE)),
                         'tf_slim (variables, arg_scope)')
    util = Override(lambda: ProxyModule('tensorflow.contrib.util', None, 'tf.compat.v1',
                                        overrides=core(_UTIL_CORE),
                                        fallback='tf.contrib.util had constant_value, '
                                                 'make_tensor_proto, make_ndarray'),
                    'tf.compat.v1 (get_static_value, make_tensor_proto, make_ndarray)')
    quantize = Override(lambda: ProxyModule('tensorflow.contrib.quantize',
                                            _module('graph_models.quantize'),
                                            'graph_models.quantize'), 'graph_models.quantize')
    lite = Override(lambda: ProxyModule('tensorflow.contrib.lite',
                                        _module('graph_models.tf1.contrib_lite'),
                                        'graph_models.tf1.contrib_lite'),
                    'graph_models.tf1.contrib_lite (the freeze toolkit\'s converter)')
    keras = Override(lambda: keras2.keras_proxy('tensorflow.contrib.keras'),
                     'tf_keras (Keras 2, v1 API)')

    def rnn():
        v1 = _module('freeze._tf').v1
        extra = {name: Override(lambda name=name: getattr(v1.nn, name), f'tf.compat.v1.nn.{name}')
                 for name in ('static_rnn', 'static_bidirectional_rnn',
                              'static_state_saving_rnn', 'dynamic_rnn',
                              'bidirectional_dynamic_rnn')}
        return ProxyModule('tensorflow.contrib.rnn', v1.nn.rnn_cell,
                           'tf.compat.v1.nn.rnn_cell', overrides=extra, fallback=_RNN_HINT)

    return ProxyModule(
        'tensorflow.contrib', None, 'tf.contrib',
        overrides={'slim': slim, 'layers': layers, 'framework': framework,
                   'quantize': quantize, 'lite': lite, 'keras': keras, 'util': util,
                   'rnn': Override(rnn, 'tf.compat.v1.nn.rnn_cell')},
        missing=CONTRIB_MISSING,
        fallback='this tf.contrib module is gone; graph-models run maps slim, layers, '
                 'framework, quantize, lite, rnn, keras and util')


def _examples_proxy() -> ProxyModule:
    input_data = Override(
        lambda: ProxyModule('tensorflow.examples.tutorials.mnist.input_data',
                            _module('graph_models.tf1.input_data'),
                            'graph_models.tf1.input_data'),
        'graph_models.tf1.input_data (graph_models.data)')
    model = Override(
        lambda: ProxyModule('tensorflow.examples.tutorials.mnist.mnist',
                            _module('graph_models.tf1.tutorials_mnist'),
                            'graph_models.tf1.tutorials_mnist'),
        'graph_models.tf1.tutorials_mnist (the tutorials\' two-hidden-layer model)')
    mnist = Override(lambda: ProxyModule('tensorflow.examples.tutorials.mnist', None,
                                         'tf.examples.tutorials.mnist',
                                         overrides={'input_data': input_data,
                                                    'mnist': model}),
                     'tf.examples.tutorials.mnist')
    tutorials = Override(lambda: ProxyModule('tensorflow.examples.tutorials', None,
                                             'tf.examples.tutorials',
                                             overrides={'mnist': mnist}),
                         'tf.examples.tutorials')
    return ProxyModule('tensorflow.examples', None, 'tf.examples',
                       overrides={'tutorials': tutorials},
                       fallback='only tensorflow.examples.tutorials.mnist (input_data, mnist) '
                                'is provided')


def tensorflow_proxy() -> ProxyModule:
    """The ``tensorflow`` module of a TF 1.x program (see the module docstring)."""
    from freeze._tf import tf, v1
    from graph_models.tf1 import keras2
    root: Dict[str, ProxyModule] = {}

    def layers():
        require_keras2('tf.layers')
        return v1.layers

    def compat():
        return ProxyModule('tensorflow.compat', tf.compat, 'tf.compat',
                           overrides={'v1': Override(lambda: root['tf'], 'tf (TF 1.x mode)'),
                                      'v2': Override(lambda: tf.compat.v2, 'tf.compat.v2')},
                           unwrapped=('v2',))

    def keras():
        require_keras2('tf.keras')
        return keras2.keras_proxy('tensorflow.keras')

    proxy = ProxyModule(
        'tensorflow', v1, 'tf.compat.v1',
        overrides={
            'contrib': Override(_contrib_proxy, 'tf.contrib (graph_models.tf1)'),
            'examples': Override(_examples_proxy, 'tf.examples (graph_models.tf1)'),
            'compat': Override(compat, 'tf.compat'),
            'layers': Override(layers, 'tf.compat.v1.layers'),
            'keras': Override(keras, 'tf_keras (Keras 2, v1 API)'),
        },
        missing={'estimator': TF_MISSING['estimator']})
    root['tf'] = proxy
    return proxy
