"""Issue 19: TF 1.x programs, unchanged, through ``graph-models run`` (and its two siblings).

Every TF 1.x-mode run is a subprocess: TF 1.x mode is process-wide (v2 behaviour disabled), so it
never enters the pytest process. The programs of tests/tf1_programs are written as their authors
wrote them for TF 1.15; the toolkit then exports what they saved.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO_ROOT

BIN = os.path.join(os.path.dirname(sys.executable), 'graph-models')
PROGRAMS = os.path.join(REPO_ROOT, 'tests', 'tf1_programs')
LOG_LEVELS = ['unset', '0', '3']


def _env(log_level=None, **extra):
    """The test's environment (its TF_CPP_MIN_LOG_LEVEL too, unless ``log_level`` says)."""
    env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
    env['PYTHONPATH'] = REPO_ROOT
    if log_level == 'unset':
        env.pop('TF_CPP_MIN_LOG_LEVEL', None)
    elif log_level is not None:
        env['TF_CPP_MIN_LOG_LEVEL'] = log_level
    env.update(extra)
    return env


def _run(*argv, cwd=None, log_level=None, env=None, timeout=300):
    return subprocess.run([BIN, *argv], capture_output=True, text=True, cwd=cwd,
                          env=env or _env(log_level), timeout=timeout)


def _script(folder, name, body):
    path = os.path.join(str(folder), name)
    with open(path, 'w') as f:
        f.write(textwrap.dedent(body))
    return path


def _program(name):
    return os.path.join(PROGRAMS, name)


# ---------------------------------------------------------------------------------------------
# The command line


def test_run_flags_are_pinned():
    from graph_models.cli import build_parser
    parser = build_parser()
    args = parser.parse_args(['run', '--data-dir', 'D', '--report', 'prog.py', '--steps', '3',
                              '--report', 'x'])
    assert (args.data_dir, args.report, args.script) == ('D', True, 'prog.py')
    # Everything after SCRIPT is the script's, its own --help and our flag names included.
    assert args.script_args == ['--steps', '3', '--report', 'x']
    assert parser.parse_args(['run', 'p.py', '--help']).script_args == ['--help']
    assert parser.parse_args(['run', 'p.py']).script_args == []


def test_importing_graph_models_changes_no_global_state():
    code = ('import os, sys, graph_models, graph_models.cli, graph_models.commands.run\n'
            'graph_models.cli.build_parser()\n'
            'print("tensorflow" in sys.modules, "TF_USE_LEGACY_KERAS" in os.environ)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env=_env(), timeout=60).stdout
    assert out.split() == ['False', 'False']


# Each log level also exercises one way out: sys.exit(7), sys.exit('message'), sys.exit().
@pytest.mark.parametrize('log_level,exit_arg,status', [('unset', '7', 7), ('0', 'message', 1),
                                                       ('3', 'none', 0)])
def test_script_runs_as_python_ran_it(tmp_path, log_level, exit_arg, status):
    script = _script(tmp_path / '', 'prog.py', '''\
        import os, sys
        import helper_module
        print('argv', sys.argv)
        print('name', __name__)
        print('cwd', os.getcwd())
        print('path0', sys.path[0])
        print('helper', helper_module.VALUE)
        print('to stderr', file=sys.stderr)
        # A line the CLI's noise filter would drop: a program's stderr is not filtered.
        print('INFO: Created TensorFlow Lite XNNPACK delegate for CPU.', file=sys.stderr)
        how = sys.argv[1]
        if how == 'message':
            sys.exit('stopping: bad input')
        if how == 'none':
            sys.exit()
        sys.exit(int(how))
        ''')
    _script(tmp_path, 'helper_module.py', 'VALUE = 42\n')
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir()
    proc = _run('run', script, exit_arg, '--help', '-x', cwd=cwd, log_level=log_level)
    assert proc.returncode == status, proc.stderr
    assert proc.stdout.splitlines() == [
        f"argv [{script!r}, {exit_arg!r}, '--help', '-x']", 'name __main__', f'cwd {cwd}',
        f'path0 {os.path.realpath(tmp_path)}', 'helper 42']
    err = proc.stderr.splitlines()
    assert 'to stderr' in err and 'Traceback' not in proc.stderr
    assert 'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.' in err
    if exit_arg == 'message':
        assert err[-1] == 'stopping: bad input'


def test_script_exception_shows_its_own_traceback(tmp_path):
    script = _script(tmp_path, 'fails.py', '''\
        import tensorflow as tf


        def build():
            raise ValueError('boom in the model')


        print('before')
        build()
        ''')
    proc = _run('run', script)
    assert proc.returncode == 1
    assert proc.stdout == 'before\n'
    lines = proc.stderr.splitlines()
    start = lines.index('Traceback (most recent call last):')
    assert lines[start + 1] == f'  File "{script}", line 9, in <module>'
    assert lines[-1] == 'ValueError: boom in the model'
    tail = '\n'.join(lines[start:])
    assert 'runpy' not in tail and 'graph_models' not in tail and 'graph-models' not in tail


def test_our_own_errors_are_one_line(tmp_path):
    proc = _run('run', str(tmp_path / 'missing.py'))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"graph-models run: error: can't open file {str(tmp_path / 'missing.py')!r}: "
        'no such file']
    script = _script(tmp_path, 'ok.py', 'print(1)\n')
    proc = _run('run', '--data-dir', str(tmp_path / 'nodata'), script)
    assert proc.returncode == 2 and proc.stderr.count('\n') == 1
    assert 'graph-models run: error: --data-dir' in proc.stderr


def test_missing_api_names_the_replacement(tmp_path):
    script = _script(tmp_path, 'old_api.py', '''\
        import tensorflow as tf
        print('hasattr', hasattr(tf.contrib, 'learn'), hasattr(tf.contrib, 'slim'))
        try:
            tf.contrib.training.HParams(learning_rate=0.1)
        except AttributeError as e:
            print('hparams', e)
        try:
            tf.contrib.rnn.LayerNormBasicLSTMCell(4)
        except AttributeError as e:
            print('rnn', e)
        print('cell', tf.contrib.rnn.BasicLSTMCell.__name__)
        estimator = tf.contrib.learn.Estimator
        ''')
    proc = _run('run', script)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    assert out[0] == 'hasattr False True'
    assert out[1].startswith('hparams tf.contrib.training has no equivalent in TensorFlow 2.21')
    assert 'HParams use a dict' in out[1]
    assert out[2].startswith('rnn tf.contrib.rnn.LayerNormBasicLSTMCell has no equivalent')
    assert 'tf.compat.v1.nn.rnn_cell.BasicLSTMCell' in out[2]
    assert out[3] == 'cell BasicLSTMCell'
    lines = proc.stderr.splitlines()
    assert f'  File "{script}", line 12, in <module>' in lines
    assert lines[-1] == ('graph_models.tf1.module.TF1APIError: tf.contrib.learn has no '
                         'equivalent in TensorFlow 2.21 (graph-models run): tf.contrib.learn '
                         '(and its Estimators) is gone; write a tf.Session training loop '
                         '(tf.compat.v1) or use Keras 2 (tf.keras Model.fit)')


def test_imports_a_tf1_program_does(tmp_path):
    script = _script(tmp_path, 'imports.py', '''\
        import tensorflow as tf
        import tensorflow.compat.v1 as tf1
        import tensorflow.contrib.slim as slim
        from tensorflow.contrib import quantize
        from tensorflow.contrib.layers import xavier_initializer, l2_regularizer
        from tensorflow.examples.tutorials.mnist import input_data
        from tensorflow.python.framework import graph_util
        from tensorflow.python.tools import freeze_graph
        from tensorflow.keras.layers import Dense
        import tensorflow.python.framework.ops as real_ops
        from tensorflow.contrib.slim.nets import resnet_v1
        import tf_slim, graph_models.quantize, graph_models.tf1.input_data
        print(tf1 is tf, slim.arg_scope is tf_slim.arg_scope,
              quantize.create_training_graph is graph_models.quantize.create_training_graph,
              input_data.read_data_sets is graph_models.tf1.input_data.read_data_sets,
              graph_util.__name__, freeze_graph.__name__, real_ops.__name__,
              Dense.__module__.startswith('tf_keras'), resnet_v1.resnet_v1_50.__name__)
        x = tf.placeholder(tf.float32, [None, 4])
        w = tf.get_variable('w', [4, 2], initializer=xavier_initializer())
        print(tf.executing_eagerly(), w.op.type, tf.layers.dense(x, 3).shape.as_list(),
              tf.contrib.framework.get_or_create_global_step().op.type)
        print(type(tf.summary.FileWriter).__name__, tf.app.run.__name__, tf.gfile.Exists('/'),
              tf.logging.INFO)
        import sys, keras
        # Graph-mode Keras 2 needs the legacy optimizers; tf_slim's batch norm the alias.
        print([getattr(keras.optimizers, n).__module__.split('.')[-2] for n in
               ('RMSprop', 'Adam', 'SGD')], tf.keras.optimizers.Adam is keras.optimizers.Adam,
              'tf_keras.legacy_tf_layers' in sys.modules)
        # TF 1.x's freeze_graph tool, as scripts called it.
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            saver.save(sess, 'fg/model.ckpt')
            tf.train.write_graph(sess.graph_def, 'fg', 'graph.pbtxt')
        freeze_graph.freeze_graph('fg/graph.pbtxt', '', False, 'fg/model.ckpt', 'dense/BiasAdd',
                                  'save/restore_all', 'save/Const:0', 'fg/frozen.pb', True, '')
        print('frozen', tf.gfile.Exists('fg/frozen.pb'))
        print(tf.__version__, tf.__file__.endswith('tensorflow/__init__.py'), keras.__version__)
        ''')
    proc = _run('run', script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first, second, third, fourth, fifth, sixth = proc.stdout.splitlines()
    assert first == ('True True True True tensorflow.python.framework.graph_util '
                     'tensorflow.python.tools.freeze_graph tensorflow.python.framework.ops True '
                     'resnet_v1_50')
    # Graph mode and TF 1.15's reference variables.
    assert second == 'False VariableV2 [None, 3] VariableV2'
    assert third == 'type run True 20'
    assert fourth == "['legacy', 'legacy', 'legacy'] True True"
    assert fifth == 'frozen True'
    assert sixth.split()[1:] == ['True', sixth.split()[0]]  # The real TensorFlow's, tf-keras'.
    assert sixth.startswith('2.21.')


def test_report_lists_the_apis_and_their_targets(tmp_path):
    script = _script(tmp_path, 'uses.py', '''\
        import tensorflow as tf
        import keras
        x = tf.placeholder(tf.float32, [None, 784])
        w = tf.get_variable('w', [784, 10], initializer=tf.contrib.layers.xavier_initializer())
        y = tf.matmul(x, w)
        y = tf.matmul(y, tf.ones([10, 10]))
        tf.contrib.quantize.create_training_graph()
        keras.optimizers.RMSprop
        print('done')
        ''')
    proc = _run('run', '--report', script)
    assert proc.returncode == 0 and proc.stdout == 'done\n'
    report = proc.stderr[proc.stderr.index('TF 1.x APIs used:'):].splitlines()
    rows = {line.split()[0]: line for line in report[1:]}
    assert re.match(r'TF 1.x APIs used: \d+ names \(4 from tf.contrib\)', report[0])
    assert 'tf.compat.v1.matmul  (x2)' in rows['tf.matmul']
    assert '-> tf.compat.v1.placeholder' in rows['tf.placeholder']
    assert ('-> graph_models.quantize.create_training_graph'
            in rows['tf.contrib.quantize.create_training_graph'])
    assert '-> tf_slim.xavier_initializer' in rows['tf.contrib.layers.xavier_initializer']
    assert '-> tf_keras.optimizers.RMSprop' in rows['keras.optimizers.RMSprop']
    # contrib names come first.
    assert [r.split()[0] for r in report[1:5]] == sorted(
        n for n in rows if '.contrib.' in n)


# ---------------------------------------------------------------------------------------------
# Data: input_data and keras.datasets


def test_read_data_sets_semantics(tmp_path, tiny_data_dir):
    script = _script(tmp_path, 'data.py', '''\
        import json
        import numpy as np
        import tensorflow as tf
        from tensorflow.examples.tutorials.mnist import input_data

        out = {}
        d = input_data.read_data_sets('unused_dir', validation_size=100)
        out['shapes'] = [list(s.images.shape) for s in d] + [list(d.train.labels.shape)]
        out['dtypes'] = [str(d.train.images.dtype), str(d.train.labels.dtype)]
        out['range'] = [float(d.test.images.min()), float(d.test.images.max())]
        out['num'] = [s.num_examples for s in d]
        h = input_data.read_data_sets('unused_dir', one_hot=True, reshape=False,
                                      dtype=tf.uint8, validation_size=0)
        out['one_hot'] = [list(h.train.labels.shape), float(h.train.labels.sum(axis=1).max()),
                          list(h.train.images.shape), str(h.train.images.dtype)]
        s = input_data.read_data_sets('unused_dir', validation_size=0, seed=3).train
        seen = np.concatenate([s.next_batch(100)[1] for _ in range(4)])
        out['epoch'] = [s.epochs_completed, sorted(np.bincount(seen).tolist())
                        == sorted(np.bincount(s.labels).tolist())]
        s.next_batch(1)
        out['after'] = s.epochs_completed
        train = input_data.read_data_sets('unused_dir', validation_size=100).train
        before, labels = train.images.copy(), train.labels.copy()
        train.next_batch(250, shuffle=False)
        b, lb = train.next_batch(100, shuffle=False)
        out['wrap'] = [train.epochs_completed, bool(np.array_equal(b[:50], before[250:300])),
                       bool(np.array_equal(b[50:], before[:50])),
                       bool(np.array_equal(lb[:50], labels[250:300]))]
        try:
            input_data.read_data_sets('unused_dir', validation_size=401)
        except ValueError as e:
            out['error'] = str(e)
        print(json.dumps(out))
        ''')
    proc = _run('run', '--data-dir', tiny_data_dir, script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out['shapes'] == [[300, 784], [100, 784], [100, 784], [300]]
    assert out['dtypes'] == ['float32', 'uint8']
    assert 0.0 <= out['range'][0] and out['range'][1] <= 1.0 and out['range'][1] > 0.5
    assert out['num'] == [300, 100, 100]
    assert out['one_hot'] == [[400, 10], 1.0, [400, 28, 28, 1], 'uint8']
    # 4 batches of 100 are exactly one epoch of 400: every example once; the next one wraps.
    assert out['epoch'] == [0, True] and out['after'] == 1
    # The end of an epoch joined to the start of the next.
    assert out['wrap'] == [1, True, True, True]
    assert out['error'] == 'Validation size should be between 0 and 400. Received: 401.'
    assert not (tmp_path / 'unused_dir').exists()  # --data-dir: train_dir is not touched.


NO_NETWORK = '''\
    import sys, urllib.request
    calls = []


    def no_network(*args, **kwargs):
        calls.append(args[0] if args else kwargs)
        raise OSError('network blocked by the test')


    urllib.request.urlopen = no_network
    import keras
    from tensorflow.examples.tutorials.mnist import input_data
    try:
        d = input_data.read_data_sets(sys.argv[1], one_hot=True, validation_size=100)
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        (f_train, _), _ = keras.datasets.fashion_mnist.load_data()
        print(d.train.num_examples, x_train.shape, x_train.dtype, y_train.shape, y_train.dtype,
              x_test.shape, f_train.shape)
    finally:
        print('downloads tried:', len(calls))
    '''


def test_data_dir_reads_local_files_and_never_downloads(tmp_path, tiny_data_dir):
    script = _script(tmp_path, 'net.py', NO_NETWORK)
    env = _env(GRAPH_MODELS_DATA=str(tmp_path / 'cache'), HOME=str(tmp_path))
    proc = _run('run', '--data-dir', tiny_data_dir, script, str(tmp_path / 'MNIST_data'),
                env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        '300 (400, 28, 28) uint8 (400,) uint8 (100, 28, 28) (400, 28, 28)',
        'downloads tried: 0']
    assert not (tmp_path / 'MNIST_data').exists() and not (tmp_path / 'cache').exists()
    # Without --data-dir, TF 1.x's behaviour: the missing files are downloaded (here: tried).
    proc = _run('run', script, str(tmp_path / 'MNIST_data'), env=env)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == 'downloads tried: 1'
    assert 'could not download https://storage.googleapis.com/cvdf-datasets/mnist/' \
           in proc.stderr.splitlines()[-1]


# ---------------------------------------------------------------------------------------------
# The two other ways in


def test_python_m_graph_models_tf1(tmp_path, tiny_data_dir):
    # Without --data-dir, read_data_sets reads train_dir, which has all four files: no download.
    script = _script(tmp_path, 'prog.py', '''\
        import sys, urllib.request
        import tensorflow as tf
        from tensorflow.examples.tutorials.mnist import input_data


        def no_network(*args, **kwargs):
            raise OSError('network blocked by the test')


        urllib.request.urlopen = no_network
        x = tf.placeholder(tf.float32, [None, 2])
        print(sys.argv[2:], __name__, tf.layers.dense(x, 1).shape.as_list(),
              input_data.read_data_sets(sys.argv[1], validation_size=0).test.num_examples)
        sys.exit(4)
        ''')
    proc = subprocess.run([sys.executable, '-m', 'graph_models.tf1', script, tiny_data_dir, 'a',
                           '--b'], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == "['a', '--b'] __main__ [None, 1] 100\n"


def test_import_graph_models_tf1_as_tf(tmp_path):
    script = _script(tmp_path, 'one_line_changed.py', '''\
        import graph_models.tf1 as tf
        import tensorflow
        x = tf.placeholder(tf.float32, [None, 3], name='x')
        y = tf.layers.dense(x, 2)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            print(sess.run(y, {x: [[1.0, 2.0, 3.0]]}).shape, tensorflow.placeholder is
                  tf.placeholder, tf.contrib.quantize.create_eval_graph.__module__)
        ''')
    proc = subprocess.run([sys.executable, script], capture_output=True, text=True, env=_env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '(1, 2) True graph_models.quantize\n'


def test_import_graph_models_tf1_after_tensorflow_names_the_fix(tmp_path):
    script = _script(tmp_path, 'late.py', '''\
        import tensorflow
        import graph_models.tf1 as tf
        print(tf.placeholder(tf.float32, [None, 1]).shape.as_list())
        tf.layers.dense
        ''')
    proc = subprocess.run([sys.executable, script], capture_output=True, text=True, env=_env(),
                          timeout=300)
    assert proc.returncode == 1
    assert proc.stdout == '[None, 1]\n'  # Everything but Keras works.
    assert proc.stderr.splitlines()[-1] == (
        'graph_models.tf1.module.TF1APIError: tf.layers needs Keras 2 (tf-keras): TensorFlow '
        'was imported before graph_models.tf1 without TF_USE_LEGACY_KERAS=1 (so with Keras 3); '
        'import graph_models.tf1 before tensorflow, or set TF_USE_LEGACY_KERAS=1 in the '
        'environment')


# ---------------------------------------------------------------------------------------------
# The programs, end to end: train, then export with the toolkit


def _integer_problems(path):
    from freeze.verify import structural_problems
    with open(path, 'rb') as f:
        return structural_problems(f.read())


def _cli(*argv):
    """The toolkit on what the program wrote: in this process (TF 2.21 as usual, no TF1 mode)."""
    from conftest import cli_output
    return cli_output(*argv)


def _export(source, mode, output):
    printed = _cli('export', source, '--quantize', mode, '-o', output)
    assert os.path.getsize(output) > 0
    return printed


def _agreement(model, data_dir):
    printed = _cli('eval', model, '--data-dir', data_dir)
    match = re.search(r'agreement with the TF graph: ([\d.]+) top-1', printed)
    assert match, printed
    return float(match.group(1))


@pytest.mark.slow
def test_layers_cnn_qat_train_then_eval_graph_exports_to_int8(tmp_path, mnist_10k_dir):
    train, evald = tmp_path / 'train', tmp_path / 'eval'
    proc = _run('run', '--data-dir', mnist_10k_dir, _program('cnn_layers_train.py'),
                '--train_dir', str(train), '--steps', '60')
    assert proc.returncode == 0, proc.stderr
    assert 'trained 60 steps' in proc.stdout
    proc = _run('run', '--data-dir', mnist_10k_dir, _program('cnn_layers_eval.py'),
                '--train_dir', str(train), '--eval_dir', str(evald),
                '--tflite', str(tmp_path / 'contrib_lite.tflite'))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('eval accuracy ')
    # tf.contrib.lite.TFLiteConverter.from_session(...) with QUANTIZED_UINT8: through the
    # freeze toolkit, verified before the program got the bytes.
    assert _integer_problems(tmp_path / 'contrib_lite.tflite') == []
    from ai_edge_litert.interpreter import Interpreter
    lite = Interpreter(model_path=str(tmp_path / 'contrib_lite.tflite'))
    assert lite.get_input_details()[0]['dtype'] == np.uint8
    printed = _export(evald / 'eval.ckpt', 'int8', tmp_path / 'int8.tflite')
    assert 'int8 (qat, qat_eval graph, verified: mean |diff| ' in printed
    assert _integer_problems(tmp_path / 'int8.tflite') == []
    _export(evald / 'eval.ckpt', 'float', tmp_path / 'float.tflite')
    assert _agreement(tmp_path / 'int8.tflite', mnist_10k_dir) > 0.95


@pytest.mark.slow
def test_slim_program_exports(tmp_path, mnist_10k_dir):
    proc = _run('run', '--data-dir', mnist_10k_dir, _program('slim_net.py'),
                '--train_dir', str(tmp_path), '--steps', '40')
    assert proc.returncode == 0, proc.stderr
    assert 'model variables: 14' in proc.stdout
    printed = _export(tmp_path / 'model.ckpt-40', 'float', tmp_path / 'float.tflite')
    assert 'float (none, float graph)' in printed
    assert _agreement(tmp_path / 'float.tflite', mnist_10k_dir) == 1.0


@pytest.mark.slow
def test_keras2_freeze_session_toco_convert_program(tmp_path, mnist_10k_dir):
    proc = _run('run', '--data-dir', mnist_10k_dir, _program('keras_freeze_toco.py'),
                '--out_dir', str(tmp_path), '--epochs', '1', '--limit', '2000')
    assert proc.returncode == 0, proc.stderr
    assert 'input dense_input output dense_1/Softmax' in proc.stdout
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(tmp_path / 'model.tflite'))
    interpreter.allocate_tensors()
    assert interpreter.get_output_details()[0]['shape'].tolist() == [1, 10]
    printed = _export(tmp_path / 'model.pb', 'float', tmp_path / 'exported.tflite')
    assert 'float (none, float graph)' in printed
    assert _agreement(tmp_path / 'exported.tflite', mnist_10k_dir) == 1.0


@pytest.mark.slow
def test_app_run_flags_program(tmp_path, mnist_10k_dir):
    proc = _run('run', '--data-dir', mnist_10k_dir, _program('app_flags.py'),
                '--train_dir', str(tmp_path / 'ckpt'), '--max_steps', '60', 'extra1')
    assert proc.returncode == 0, proc.stderr
    assert "extra arguments: ['extra1']" in proc.stderr
    assert float(proc.stdout.split()[-1]) > 0.7
    _export(tmp_path / 'ckpt' / 'softmax.ckpt', 'float', tmp_path / 'float.tflite')


@pytest.mark.slow
def test_contrib_lite_toco_convert_and_from_frozen_graph(tmp_path):
    script = _script(tmp_path, 'lite.py', '''\
        import tensorflow as tf

        g = tf.Graph()
        with g.as_default():
            x = tf.placeholder(tf.float32, [1, 16], name='x')
            h = tf.layers.dense(x, 8, activation=tf.nn.relu, name='fc1')
            out = tf.nn.softmax(tf.layers.dense(h, 4, name='fc2'), name='out')
            tf.contrib.quantize.create_eval_graph()
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                frozen = tf.graph_util.convert_variables_to_constants(
                    sess, g.as_graph_def(), ['out'])
                model = tf.contrib.lite.toco_convert(frozen, [x], [out],
                                                     inference_type=tf.uint8,
                                                     quantized_input_stats=[(0., 255.)])
                open('toco_uint8.tflite', 'wb').write(model)
                tf.train.write_graph(frozen, '.', 'frozen.pb', as_text=False)
        converter = tf.contrib.lite.TFLiteConverter.from_frozen_graph('frozen.pb', ['x'], ['out'])
        open('frozen_float.tflite', 'wb').write(converter.convert())
        ''')
    proc = _run('run', script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _integer_problems(tmp_path / 'toco_uint8.tflite') == []
    # inference_type left at float: a float model (the fake-quant ops kept as such).
    assert any('computes in float' in p for p in
               _integer_problems(tmp_path / 'frozen_float.tflite'))


# The documented run of tests/tf1_programs/mnist_mlp_qat.py (docs/tf1-programs.md, and the
# README's lead) runs with every other snippet in test_docs_snippets.py, with the same checks.
