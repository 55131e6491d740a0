"""Switching a process into TF 1.x mode: `install` puts the proxy ``tensorflow`` and ``keras``
modules of `graph_models.tf1.module` (built by `graph_models.tf1.contrib_api` and
`graph_models.tf1.keras2`) into ``sys.modules`` and the import finder onto ``sys.meta_path``.
Only `graph-models run`, ``python -m graph_models.tf1`` and ``import graph_models.tf1`` call it.
"""

import os
import sys
import warnings
from typing import Dict, Optional

from graph_models.tf1.module import ProxyFinder, ProxyModule, _State, keras2_enabled


_DISPATCH_FILES = tuple(os.path.join('tensorflow', 'python', 'util', name)
                        for name in ('dispatch.py', 'traceback_utils.py'))


def _deprecations_name_the_caller() -> None:
    """TF 1.15's deprecation warnings named the program's line ("From mnist_deep.py:97: calling
    dropout ..."); TF 2.21's name its dispatch wrapper (dispatch.py:1264): skip its frames."""
    import inspect
    from tensorflow.python.util import deprecation

    def call_location(outer=False):
        frame = inspect.currentframe().f_back.f_back
        if outer and frame is not None and frame.f_back is not None:
            frame = frame.f_back
        while frame is not None and frame.f_back is not None and \
                frame.f_code.co_filename.endswith(_DISPATCH_FILES):
            frame = frame.f_back
        return f'{frame.f_code.co_filename}:{frame.f_lineno}'

    deprecation._call_location = call_location  # pylint: disable=protected-access


def install(data_dir: Optional[str] = None) -> Dict[str, ProxyModule]:
    """Switches this process into TF 1.x mode (idempotent); returns the root proxies.

    Args:
      data_dir: a folder with the MNIST (or Fashion-MNIST) IDX files that every dataset loader
        of the program reads instead of downloading; None leaves the loaders as TF 1.x had them.

    Returns:
      ``{'tensorflow': proxy, 'keras': proxy}``.
    """
    if data_dir is not None:
        _State.data_dir = os.path.abspath(data_dir)
    if _State.roots is not None:
        return _State.roots
    if 'tensorflow' not in sys.modules:
        # Read by TensorFlow when tf.layers / tf.keras load Keras; a user's own setting wins.
        os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
    # Bind the real TensorFlow in every module we map to before the proxies go in.
    from freeze import export, tflite, verify  # noqa: F401
    from freeze._tf import tf, v1
    import graph_models.quantize  # noqa: F401
    import tf_slim  # noqa: F401
    if keras2_enabled():
        import tf_keras  # noqa: F401
        import tf_keras.api._v1.keras  # noqa: F401
        # TensorFlow looks for tf_keras.legacy_tf_layers (tf_slim's batch norm needs it);
        # tf-keras 2.21 ships it as tf_keras.src.legacy_tf_layers.
        import tf_keras.src.legacy_tf_layers as legacy_layers
        sys.modules.setdefault('tf_keras.legacy_tf_layers', legacy_layers)
        tf_keras.legacy_tf_layers = legacy_layers
    from tensorflow.python.framework import ops, tensor
    from tensorflow.python.ops import cond, control_flow_ops
    # tf-slim 1.1.0 still reads ops.Tensor and control_flow_ops.cond (batch norm with a tensor
    # is_training), which TF 2.16 moved to framework.tensor and ops.cond.
    if not hasattr(ops, 'Tensor'):
        ops.Tensor = tensor.Tensor
    if not hasattr(control_flow_ops, 'cond'):
        control_flow_ops.cond = cond.cond
    # Keras freeze_session scripts import convert_variables_to_constants from
    # tensorflow.python.framework.graph_util (TF 1.15 had it there and in graph_util_impl).
    from tensorflow.python.framework import convert_to_constants, graph_util, graph_util_impl
    for module in (graph_util, graph_util_impl):
        if not hasattr(module, 'convert_variables_to_constants'):
            module.convert_variables_to_constants = \
                convert_to_constants.convert_variables_to_constants
    v1.disable_v2_behavior()
    _deprecations_name_the_caller()
    # tf-keras' warnings about what TF 1.15 and Keras 2 took silently (Keras 2 programs pass
    # `lr=`; graph-mode fit reads Model.state_updates itself): noise in a TF 1.x program's stderr.
    for message in (r'The `lr` argument is deprecated', r'`Model\.state_updates` will be removed'):
        warnings.filterwarnings('ignore', message=message, category=UserWarning)
    # TF 1.x showed warnings (freeze._tf lowered the logger to errors for the toolkit).
    tf.get_logger().setLevel('WARNING')

    from graph_models.tf1 import contrib_api, keras2
    tf_proxy = contrib_api.tensorflow_proxy()
    keras_proxy = keras2.keras_proxy('keras')
    roots = {'tensorflow': tf_proxy, 'keras': keras_proxy}
    for name in [n for n in sys.modules if n == 'keras' or n.startswith('keras.')]:
        del sys.modules[name]  # A Keras 3 loaded earlier: `import keras` is Keras 2 now.
    _State.real_tops = {'tensorflow': sys.modules['tensorflow'],
                        'keras': sys.modules.get('tf_keras')}
    sys.modules['tensorflow'] = tf_proxy
    sys.modules['keras'] = keras_proxy
    sys.meta_path.insert(0, ProxyFinder(roots))
    _State.roots = roots
    return roots
