"""Issue 20: export takes what canonical TF1 programs write, as they wrote it.

The deep-MNIST tutorial (an unnamed ``keep_prob`` placeholder), speech_commands' ``tiny_conv``
(a shape-less ``dropout_rate``, an input fake-quantized to [0, 26]), ``fully_connected_feed``
(a fixed batch of 100, ``in_top_k``), an atrous depthwise layer: each is built in plain TF1
code, trained briefly with quantization-aware training and exported with ``--quantize int8``
and no other flag. The refusals that remain name their cause and the flag that fixes it, and the
tflite_convert/freeze_graph spellings of the flags are accepted.
"""

import json
import os

import numpy as np
import pytest

from freeze import safety, sources, verify
from freeze.errors import FreezeError, VerificationError
from graph_models import cli, quantize
from graph_models._tf import tf, v1
from graph_models.commands import flags

from conftest import synthetic_dataset, write_idx_folder
import user_models


@pytest.fixture(scope='module')
def programs(tmp_path_factory):
    root = tmp_path_factory.mktemp('programs')
    data = synthetic_dataset(600, 200)
    return {'root': root, 'data': data, 'data_dir': write_idx_folder(root / 'data', data),
            'deep': user_models.deep_mnist(root / 'deep', data),
            'speech': user_models.speech_tiny_conv(root / 'speech', data),
            'feed': user_models.fully_connected_feed(root / 'feed', data)}


def _export(capsys, source, output, *extra):
    """``export SOURCE --quantize int8 -o OUTPUT``: its record and printed line."""
    status = cli.main(['export', str(source), '--quantize', 'int8', '-o', str(output), *extra])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(open(str(output) + '.json').read()), captured.out


def _one_line_error(capsys, command, status):
    assert cli.main(command) == status
    err = capsys.readouterr().err
    assert err.startswith(f'graph-models {command[0]}: error:') and err.count('\n') == 1, err
    return err


def _assert_verified_int8(record, out):
    assert record['verified'] and record['quantization'] == 'qat' and record['batch_size'] == 1
    # The verifier's agreement with the frozen graph is measured, recorded and printed.
    assert 0.0 <= record['verify_mean_abs_diff'] < 0.1
    assert f'verified: mean |diff| {record["verify_mean_abs_diff"]:.4f}' in out


@pytest.mark.slow
def test_deep_mnist_unnamed_keep_prob_exports_int8(programs, tmp_path, capsys):
    """``keep_prob = tf.placeholder(tf.float32)`` in name scope ``dropout``: a switch by use."""
    frozen = sources.load_source(programs['deep'])
    graph_def = sources._read_meta_graph(programs['deep'] + '.meta').graph_def
    assert sources.switch_values(graph_def)['dropout/Placeholder'] == 1.0
    # No softmax: the prediction (the logits' range) beats loss/Mean and accuracy/Mean.
    assert frozen.inputs == ['Placeholder']
    assert frozen.outputs == ['fc2/act_quant/FakeQuantWithMinMaxVars']
    record, out = _export(capsys, programs['deep'], tmp_path / 'deep.tflite')
    _assert_verified_int8(record, out)
    assert record['input_shapes'] == {'Placeholder': [1, 784]}
    # Its training checkpoint too: the loss's reshape, read by gradients as well, is no output.
    train = os.path.join(os.path.dirname(programs['deep']), 'train', 'model.ckpt.meta')
    assert sources.discover_outputs(sources._read_meta_graph(train).graph_def) == [
        'fc2/act_quant/FakeQuantWithMinMaxVars']
    # Naming the data input is enough: the switch is still recognised.
    record, _ = _export(capsys, programs['deep'], tmp_path / 'named.tflite',
                        '--input-arrays', 'Placeholder')
    assert record['verified']


@pytest.mark.slow
def test_speech_commands_dropout_rate_and_own_input_range(programs, tmp_path, capsys):
    """A shape-less ``dropout_rate`` is fed 0; the input's own [0, 26] range is the default."""
    graph_def = sources._read_meta_graph(programs['speech'] + '.meta').graph_def
    assert sources.switch_values(graph_def)['dropout_rate'] == 0.0
    record, out = _export(capsys, programs['speech'], tmp_path / 'speech.tflite')
    _assert_verified_int8(record, out)
    assert record['input_arrays'] == ['fingerprint_input']
    assert record['input_range'] == [0.0, 26.0]
    # The TF graph and the .tflite both see the pixels on [0, 26].
    accuracies = []
    for model in (programs['speech'], str(tmp_path / 'speech.tflite')):
        assert cli.main(['eval', model, '--data-dir', programs['data_dir']]) == 0
        accuracies.append(float(capsys.readouterr().out.split('accuracy ')[1].split()[0]))
    assert accuracies[0] > 0.8 and abs(accuracies[0] - accuracies[1]) <= 0.03
    # A range the user gives that the graph would override is still refused, with the fix.
    err = _one_line_error(capsys, ['export', programs['speech'], '--quantize', 'int8',
                                   '--input-range', '0,1', '-o', str(tmp_path / 'x.tflite')], 2)
    assert ('--input-range 0,1 differs from the range [0, 26] the graph quantizes input '
            'fingerprint_input to') in err
    assert err.strip().endswith('pass --input-range 0,26 or leave it out')


@pytest.mark.slow
def test_fully_connected_feed_fixed_batch_is_rebatched(programs, tmp_path, capsys):
    """``[100, 784]`` placeholders and a Reshape to ``[100, -1]``: batch 1 by default."""
    record, out = _export(capsys, programs['feed'], tmp_path / 'feed.tflite')
    _assert_verified_int8(record, out)
    assert record['input_shapes'] == {'Placeholder': [1, 784]}
    assert cli.main(['freeze', programs['feed'], '-o', str(tmp_path / 'feed.pb')]) == 0
    assert 'input Placeholder [1, 784]' in capsys.readouterr().out
    frozen = sources.load_source(str(tmp_path / 'feed.pb'))
    shapes = [tf.make_ndarray(n.attr['value'].tensor).tolist() for n in frozen.graph_def.node
              if n.name.endswith('rebatched_shape')]
    assert shapes == [[1, -1]]
    # An explicit shape re-batches too (eval reloads the source with the recorded shapes).
    frozen = sources.load_source(programs['feed'], input_shapes=record['input_shapes'])
    assert frozen.input_shapes == {'Placeholder': [1, 784]}
    # --batch-size keeps another batch; the verifier feeds its 32 samples in batches of 100.
    record, _ = _export(capsys, programs['feed'], tmp_path / 'b100.tflite', '--batch-size',
                        '100')
    assert record['verified'] and record['input_shapes'] == {'Placeholder': [100, 784]}
    model = (tmp_path / 'b100.tflite').read_bytes()
    with pytest.raises(VerificationError, match=r'^cannot verify the converted model: the '
                       r'sample inputs have examples of shape \[10\], the model input takes '
                       r'\[784\]'):
        verify.verify_integer_model(model, np.zeros((4, 10), np.float32), lambda x: x)


@pytest.mark.slow
def test_in_top_k_training_checkpoint_picks_the_prediction(programs, capsys):
    """fully_connected_feed's training checkpoint holds InTopKV2, gradients and the range
    updates of create_training_graph: the automatic output is the logits."""
    graph_def = sources._read_meta_graph(programs['feed'] + '.meta').graph_def
    ops = {n.op for n in graph_def.node}
    assert {'InTopKV2', 'ApplyAdam'} <= ops or {'InTopKV2', 'ResourceApplyAdam'} <= ops
    assert sources.discover_outputs(graph_def) == [
        'softmax_linear/act_quant/FakeQuantWithMinMaxVars']
    assert not safety.unsafe_ops(graph_def).keys() & {'InTopKV2', 'InTopK'}


@pytest.mark.slow
def test_atrous_depthwise_exports_int8(tmp_path, capsys):
    prefix = user_models.atrous_mobilenet(tmp_path / 'atrous', synthetic_dataset(300, 50),
                                          steps=60)
    record, out = _export(capsys, prefix, tmp_path / 'atrous.tflite')
    _assert_verified_int8(record, out)


@pytest.mark.slow
def test_atrous_depthwise_passes_the_allow_list(tmp_path, capsys):
    """The allow-list half of item 5: SpaceToBatchND/BatchToSpaceND are pure math."""
    prefix = user_models.atrous_mobilenet(tmp_path / 'atrous', synthetic_dataset(300, 50),
                                          steps=20)
    assert cli.main(['freeze', prefix, '-o', str(tmp_path / 'atrous.pb')]) == 0
    assert 'outputs Predictions' in capsys.readouterr().out
    ops = {n.op for n in sources.load_source(str(tmp_path / 'atrous.pb')).graph_def.node}
    assert {'SpaceToBatchND', 'BatchToSpaceND', 'DepthwiseConv2dNative'} <= ops


def test_allow_list_keeps_math_and_refuses_files_and_code():
    math_ops = {'SpaceToBatchND', 'BatchToSpaceND', 'InTopKV2', 'InTopK', 'ArgMax', 'Equal',
                'Cast', 'Mean', 'Pad', 'MirrorPad', 'ResizeBilinear', 'Squeeze', 'ExpandDims',
                'StridedSlice', 'Shape', 'Pack', 'Unpack', 'ConcatV2', 'Split', 'Tile',
                'Transpose', 'AvgPool', 'MaxPool', 'LRN', 'Relu6', 'Elu', 'Selu', 'Softplus',
                'Tanh', 'Sigmoid', 'LogSoftmax', 'TopKV2', 'OneHot', 'Range', 'Fill'}
    assert math_ops <= safety.SAFE_OPS
    file_or_code = {'ReadFile', 'WriteFile', 'PyFunc', 'PyFuncStateless', 'EagerPyFunc',
                    'Save', 'SaveV2', 'SaveSlices', 'Restore', 'RestoreV2', 'RestoreSlice',
                    'MatchingFiles', 'ImmutableConst', 'Print', 'PrintV2', 'TFRecordReaderV2',
                    'WholeFileReaderV2', 'TextLineReaderV2', 'FixedLengthRecordReaderV2',
                    'MergeV2Checkpoints', 'WriteSummary', 'DecodeCSV', 'FIFOQueueV2',
                    'HashTableV2', 'InitializeTableFromTextFileV2', 'TensorDataset'}
    assert not file_or_code & safety.SAFE_OPS


def _scalar_mul_graph(path):
    """A graph whose scalar float placeholder scales the logits: not a dropout switch."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name='x')
        temperature = v1.placeholder(tf.float32, name='temperature')
        tf.identity(tf.matmul(x, tf.ones([4, 2])) * temperature, name='scores')
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return str(path)


def test_a_scalar_that_feeds_no_dropout_is_named(tmp_path, capsys):
    pb = _scalar_mul_graph(tmp_path / 'm.pb')
    err = _one_line_error(capsys, ['freeze', pb, '-o', str(tmp_path / 'f.pb')], 1)
    assert err.strip().endswith(
        'placeholder temperature feeds the outputs but has no shape and is no training switch '
        '(a scalar keep_prob/rate feeding a dropout, a bool is_training); build it with '
        'tf.placeholder_with_default(VALUE, []) to freeze its inference value, or with a shape '
        'to make it an input')
    # Cut off as not an input, it is named as such.
    err = _one_line_error(capsys, ['freeze', pb, '--input-arrays', 'x', '-o',
                                   str(tmp_path / 'f.pb')], 1)
    assert err.strip().endswith(
        'placeholder temperature is needed by the outputs but is not an input (--input-arrays) '
        'nor a training switch (a scalar keep_prob/rate feeding a dropout, a bool is_training, '
        'a placeholder_with_default); add it to --input-arrays')


def test_dropout_role_is_read_from_use_whatever_the_name(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 8], name='x')
        with tf.name_scope('dropout'):
            keep = v1.placeholder(tf.float32)  # TF 1 keep_prob, unnamed.
            h = v1.nn.dropout(x, keep)
        rate = v1.placeholder(tf.float32, name='p')  # TF 2 rate, under another name.
        h = tf.nn.dropout(h, rate=rate)
        named = v1.placeholder(tf.float32, name='dropout_rate')  # No shape, no dropout.
        h = h * (1.0 - named)
        # TF 1.x's own dropout: floor(keep_prob + U) masks, here with a rate as 1 - rate.
        old_keep, old_rate = v1.placeholder(tf.float32, name='a'), v1.placeholder(tf.float32,
                                                                                  name='b')
        for keep in (old_keep, 1.0 - old_rate):
            h = h / keep * tf.floor(keep + v1.random_uniform(tf.shape(h)))
        tf.identity(h, name='y')
    values = sources.switch_values(graph.as_graph_def())
    assert values['dropout/Placeholder'] == 1.0 and values['p'] == 0.0
    assert values['dropout_rate'] == 0.0 and values['a'] == 1.0 and values['b'] == 0.0
    frozen = sources.make_inference_graph(graph.as_graph_def(), output_arrays=['y'])
    assert frozen[1] == ['x'] and not any(n.op.startswith('Random') for n in frozen[0].node)


def test_discovery_skips_gradients_and_range_updates():
    """A QAT training graph with loss, optimizer, in_top_k and summaries, without training."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784])
        labels = v1.placeholder(tf.int32, [None])
        w = v1.get_variable('w', [784, 10])
        logits = tf.matmul(x, w) + v1.get_variable('b', [10])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        v1.summary.scalar('loss', loss)
        tf.reduce_sum(tf.cast(v1.nn.in_top_k(logits, labels, 1), tf.int32))
        quantize.create_training_graph(graph)
        v1.train.GradientDescentOptimizer(0.1).minimize(loss)
    graph_def = graph.as_graph_def()
    assert any('AssignMinEma' in n.name for n in graph_def.node)
    assert sources.discover_outputs(graph_def) == ['act_quant/FakeQuantWithMinMaxVars']


def _fixed_batch_graph(path, extra, stacked=False):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [100, 784], name='x')
        flat = tf.reshape(x, tf.stack([100, 784]) if stacked else [100, -1])
        out = tf.matmul(flat, tf.ones([784, 10]) / 784.0)
        if extra:
            out = out + tf.zeros([100, 10])  # Hard-codes the batch where no rewrite reaches.
        tf.nn.softmax(out, name='probs')
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return str(path)


@pytest.mark.parametrize('stacked', [False, True])
def test_fixed_batch_reshape_is_rewritten_and_other_uses_are_refused(tmp_path, capsys, stacked):
    from freeze.export import run_graph
    pb = _fixed_batch_graph(tmp_path / 'reshape.pb', extra=False, stacked=stacked)
    frozen = sources.load_source(pb)
    assert frozen.input_shapes == {'x': [1, 784]}
    got = run_graph(frozen.graph_def, 'x', 'probs', np.ones((3, 784), np.float32))
    np.testing.assert_allclose(got, np.full((3, 10), 0.1), atol=1e-6)
    pb = _fixed_batch_graph(tmp_path / 'zeros.pb', extra=True)
    err = _one_line_error(capsys, ['freeze', pb, '-o', str(tmp_path / 'f.pb')], 1)
    assert 'input x has a fixed batch of 100 that add (AddV2) also hard-codes (shape ' \
           '[100, 10]), so it cannot take batch 1; export with --batch-size 100 to keep the ' \
           'batch it was built with, or build the graph with a None batch' in err
    assert cli.main(['freeze', pb, '--batch-size', '100', '-o', str(tmp_path / 'f.pb')]) == 0
    assert 'input x [100, 784]' in capsys.readouterr().out


def test_allow_unsafe_ops_applies_to_every_tf1_source(tmp_path, capsys):
    """The flag's help and behaviour agree: any TF1 source, not .pb only."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784], name='x')
        w = v1.get_variable('w', [784, 10])
        found = tf.cast(tf.size(tf.io.matching_files(str(tmp_path / '*.none'))), tf.float32)
        tf.nn.softmax(tf.matmul(x, w) + found, name='probs')
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            prefix = v1.train.Saver().save(session, str(tmp_path / 'm' / 'model.ckpt'))
    command = ['freeze', prefix, '-o', str(tmp_path / 'f.pb')]
    err = _one_line_error(capsys, command, 1)
    assert 'MatchingFiles (MatchingFiles)' in err and '--allow-unsafe-ops' in err
    assert cli.main(command + ['--allow-unsafe-ops']) == 0
    assert '.pb only' not in flags.UNSAFE_HELP and 'SavedModel' in flags.UNSAFE_HELP


def test_tflite_convert_and_freeze_graph_spellings_are_accepted():
    parser = cli.build_parser()
    args = parser.parse_args([
        'export', '--graph_def_file', 'm.pb', '--output_file', 'm.tflite',
        '--input_arrays', 'x', '--output_arrays', 'a,b', '--input_shapes', '1,784',
        '--inference_type', 'QUANTIZED_UINT8', '--mean_values', '128', '--std_dev_values',
        '127.5', '--saved_model_tag_set', 'serve,tpu', '--saved_model_signature_key', 'sig'])
    assert flags.source_path(args.source, args.source_options) == 'm.pb'
    assert args.output == 'm.tflite' and args.quantize == 'uint8'
    kwargs = flags.source_kwargs(args)
    assert kwargs['input_arrays'] == ['x'] and kwargs['output_arrays'] == ['a', 'b']
    assert kwargs['input_shapes'] == [1, 784] and kwargs['tag_set'] == ('serve', 'tpu')
    assert kwargs['signature_def'] == 'sig'
    # real = (q - mean) / std over the uint8 values 0..255.
    low, high = flags.stats_input_range(args.mean_values, args.std_dev_values, args.quantize)
    assert low == pytest.approx(-128 / 127.5) and high == pytest.approx(127 / 127.5)
    assert flags.stats_input_range(-128.0, 255.0, 'int8') == pytest.approx((0.0, 1.0))
    for spelling, mode in (('INT8', 'int8'), ('FLOAT', 'float'), ('quantized_uint8', 'uint8')):
        assert parser.parse_args(['export', 'm.pb', '--inference_type', spelling]).quantize \
            == mode
    args = parser.parse_args(['freeze', '--input_checkpoint', 'ckpt/model.ckpt',
                              '--input_meta_graph', 'ckpt/model.ckpt.meta', '--output_graph',
                              'f.pb', '--output_node_names', 'probs'])
    assert flags.source_path(args.checkpoint, args.source_options) == 'ckpt/model.ckpt'
    assert args.output == 'f.pb' and flags.source_kwargs(args)['output_arrays'] == ['probs']
    for spelling in ('--input_file', '--saved_model_dir', '--input_graph',
                     '--input_saved_model_dir'):
        args = parser.parse_args(['export', spelling, 'src'])
        assert flags.source_path(args.source, args.source_options) == 'src'


@pytest.mark.parametrize('command, message', [
    (['export'], 'no model source: give SOURCE (a checkpoint prefix with its .meta, a '
                 'SavedModel folder or a .pb/.pbtxt)'),
    (['freeze', '--input_graph', 'g.pbtxt', '--input_checkpoint', 'model.ckpt'],
     'two model sources, g.pbtxt and model.ckpt: give one (a checkpoint prefix reads its graph '
     'from the .meta beside it, so freeze_graph\'s --input_graph is not needed with '
     '--input_checkpoint)'),
    (['export', 'm.pb', '--quantize', 'int8', '--mean_values', '0'],
     '--mean_values and --std_dev_values go together; or give the real input range with '
     '--input-range MIN,MAX'),
    (['export', 'm.pb', '--mean_values', '0', '--std_dev_values', '255'],
     '--mean_values/--std_dev_values describe a quantized input: add --quantize int8 or uint8'),
    (['export', 'm.pb', '--inference_type', 'INT8', '--mean_values', '0', '--std_dev_values',
      '255', '--input-range', '0,1'],
     '--input-range and --mean_values/--std_dev_values both give the input range: keep one'),
])
def test_flag_spelling_refusals_are_one_line(capsys, command, message):
    err = _one_line_error(capsys, command, 2)
    assert message in err


def test_unknown_inference_type_names_the_choices(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(['export', 'm.pb', '--inference_type', 'INT4'])
    assert ("expected one of FLOAT, QUANTIZED_UINT8, INT8, QUANTIZED_INT8, got 'INT4'"
            in capsys.readouterr().err)


def test_unknown_output_is_still_named(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name='x')
        w = tf.ones([4, 2])
        tf.matmul(x, w, name='a')
        tf.matmul(x, w * 2.0, name='b')
    with pytest.raises(FreezeError, match='cannot tell the output of the graph: candidates a, '
                                          'b; name it with --output-arrays'):
        sources.discover_outputs(graph.as_graph_def())


def test_a_named_prediction_is_kept():
    """``tf.identity(logits, name='output')`` read by the loss and the accuracy stays the
    output; the loss's own reshape of it does not."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784], name='x')
        labels = v1.placeholder(tf.int64, [None], name='labels')
        output = tf.identity(tf.matmul(x, tf.ones([784, 10])), name='output')
        tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
            labels=tf.one_hot(labels, 10), logits=output))
        tf.reduce_mean(tf.cast(tf.equal(tf.argmax(output, 1), labels), tf.float32))
    assert sources.discover_outputs(graph.as_graph_def()) == ['output']


def test_a_scalar_added_after_dropout_is_no_switch():
    """Only the dropout's noise makes a switch: a scalar added to dropped-out activations is
    an input like any other."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 8], name='x')
        keep_prob = v1.placeholder(tf.float32, name='kp')
        offset = v1.placeholder(tf.float32, name='offset')
        tf.identity(v1.nn.dropout(x, keep_prob) + offset, name='y')
    values = sources.switch_values(graph.as_graph_def())
    assert values == {'kp': 1.0}


def test_an_output_that_reads_two_inputs_is_named_with_the_fix(tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name='x')
        labels = v1.placeholder(tf.float32, [None, 2], name='labels')
        scores = tf.matmul(tf.quantization.fake_quant_with_min_max_args(x, 0.0, 1.0),
                           tf.ones([4, 2]))
        tf.reduce_mean(tf.abs(scores - labels), name='error')
    pb = tmp_path / 'm.pb'
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    err = _one_line_error(capsys, ['export', str(pb), '--quantize', 'int8'], 2)
    assert err.strip().endswith('integer export needs exactly one input, the graph has 2: x, '
                                'labels (read by error); name an output that reads one of them '
                                'with --output-arrays')
