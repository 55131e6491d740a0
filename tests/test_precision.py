"""mixed_bfloat16: the CPU check, the run config field, the grappler rewrite on the real
session config, float32 checkpoints and exports, and QAT's fake-quant ops staying float32."""

import json
import os

import numpy as np
import pytest

from graph_models.nets import graphs
from graph_models.nets import precision
from graph_models import export
from graph_models._tf import tf, v1
from graph_models.system.cpu import cpu_info, read_cpuinfo
from graph_models.errors import ConfigError
from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.training.run_config import RunConfig, read_run_config, write_run_config
from graph_models.training.train import session_config, train_and_eval

EPYC = ('processor\t: 0\nmodel name\t: AMD EPYC 9R14\n'
        'flags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni avx512_bf16\n')
SAPPHIRE = ('model name\t: Intel(R) Xeon(R) Platinum 8480+\n'
            'flags\t\t: fpu avx2 avx512f amx_tile amx_int8 amx_bf16\n')
SKYLAKE = ('model name\t: Intel(R) Xeon(R) Gold 6148\n'
           'flags\t\t: fpu sse2 avx2 fma avx512f avx512bw\n')
HAS_BF16 = cpu_info(read_cpuinfo() or '')['bf16'] and precision.onednn_enabled()
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason='this CPU has neither avx512_bf16 nor '
                                                     'amx_bf16, or TF_ENABLE_ONEDNN_OPTS=0')


def test_mixed_bfloat16_without_onednn_is_refused_in_one_line():
    # TF_ENABLE_ONEDNN_OPTS=0 turns the rewrite off: the run would silently stay float32.
    with pytest.raises(ConfigError) as e:
        precision.check_supported('mixed_bfloat16', EPYC, onednn=False)
    assert 'TF_ENABLE_ONEDNN_OPTS=0' in str(e.value) and '\n' not in str(e.value)
    assert '--precision float32' in e.value.for_cli()
    precision.check_supported('float32', EPYC, onednn=False)


def test_cpu_check_accepts_native_bfloat16_and_refuses_emulated():
    for text in (EPYC, SAPPHIRE):
        precision.check_supported('mixed_bfloat16', text, onednn=True)
    for text in (EPYC, SKYLAKE, None):
        precision.check_supported('float32', text)
    with pytest.raises(ConfigError) as e:
        precision.check_supported('mixed_bfloat16', SKYLAKE, onednn=True)
    message = str(e.value)
    assert 'avx512_bf16 or amx_bf16' in message and 'Gold 6148' in message
    assert "precision='float32'" in message and '\n' not in message
    assert '--precision float32' in e.value.for_cli()
    with pytest.raises(ConfigError, match='no /proc/cpuinfo'):
        precision.check_supported('mixed_bfloat16', None, onednn=True)


def test_train_and_eval_refuses_before_touching_folders(tmp_path, tiny_data):
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1)
    with pytest.raises(ConfigError, match='avx512_bf16 or amx_bf16, which this CPU'):
        train_and_eval(run, tiny_data, log_dir=str(tmp_path / 'logs'),
                       checkpoint_dir=str(tmp_path / 'ckpt'), precision='mixed_bfloat16',
                       cpuinfo_text=SKYLAKE, progress=False, log=lambda line: None)
    assert not (tmp_path / 'ckpt').exists() and not (tmp_path / 'logs').exists()


def test_run_config_precision_field(tmp_path):
    assert RunConfig().precision == 'float32'
    with pytest.raises(ConfigError, match='precision must be one of float32, mixed_bfloat16'):
        RunConfig(precision='float16')
    run = RunConfig(precision='mixed_bfloat16')
    write_run_config(str(tmp_path), run)
    data = json.loads((tmp_path / 'run_config.json').read_text())
    assert data['precision'] == 'mixed_bfloat16'
    assert read_run_config(str(tmp_path)) == run
    # A run config written before the field existed reads as float32.
    del data['precision']
    (tmp_path / 'run_config.json').write_text(json.dumps(data))
    assert read_run_config(str(tmp_path)).precision == 'float32'
    # A compute setting: resuming may change it.
    assert RunConfig().differences(run) == []


def test_cli_flag_choices(capsys):
    from graph_models.cli import main
    with pytest.raises(SystemExit) as e:
        main(['train', '--precision', 'float16'])
    assert e.value.code == 2
    assert "invalid choice: 'float16'" in capsys.readouterr().err


def _one_step_dtypes(run: RunConfig):
    """Runs one training step of ``run``'s graph with the real session config."""
    graph, tensors = graphs.build_training_graph(
        run.model, learning_rate=1e-3, seed=0,
        rewrite=run.quantization.training_rewrite() if run.quantization else None)
    with graph.as_default():
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph, config=session_config(run)) as session:
        session.run(init)
        rng = np.random.default_rng(0)
        feed = {tensors.model.inputs: rng.random((20,) + run.model.input_shape, np.float32),
                tensors.labels: rng.integers(0, 10, 20)}
        metadata = v1.RunMetadata()
        session.run(tensors.train_op, feed, run_metadata=metadata,
                    options=v1.RunOptions(output_partition_graphs=True))
    return precision.node_dtypes(metadata)


def _bfloat16_ops(nodes):
    return {op for op, dtype in nodes.values() if dtype == 'bfloat16'}


@needs_bf16
@pytest.mark.parametrize('name,products', [
    ('mlp', {'_MklNativeFusedMatMul', '_MklMatMul'}),
    ('cnn', {'_MklNativeFusedConv2D', '_MklNativeConv2DBackpropFilterWithBias',
             '_MklNativeConv2DBackpropInput', '_MklNativeFusedMatMul', '_MklMatMul'})])
def test_rewrite_computes_products_in_bfloat16(name, products):
    mixed = _one_step_dtypes(RunConfig(model=ModelConfig(name), precision='mixed_bfloat16'))
    assert products <= _bfloat16_ops(mixed)
    assert 'Cast' in _bfloat16_ops(mixed)
    # The variable updates stay float32.
    assert {dtype for op, dtype in mixed.values() if op.startswith('ResourceApplyAdam')} == \
        {'float32'}
    assert _bfloat16_ops(_one_step_dtypes(RunConfig(model=ModelConfig(name)))) == set()


@needs_bf16
def test_rewrite_leaves_fake_quant_and_ranges_float32():
    run = RunConfig(model=ModelConfig('cnn'), precision='mixed_bfloat16',
                    quantization=QuantizationConfig())
    nodes = _one_step_dtypes(run)
    assert {'_MklNativeFusedConv2D', '_MklNativeFusedMatMul'} <= _bfloat16_ops(nodes)
    fake_quants = {name: op for name, (op, _) in nodes.items()
                   if op == 'FakeQuantWithMinMaxVars'}
    assert len(fake_quants) == 10  # A weight and an activation quantizer per layer.
    # The op has float32 kernels only; its ranges are float32 variables. An activation's
    # quantizer reads the layer's bfloat16 output cast back to float32, so the batch min/max
    # (computed on that same bfloat16 tensor) are exact ranges of what it quantizes.
    assert all(dtype is None for name, (op, dtype) in nodes.items() if name in fake_quants)


@needs_bf16
@pytest.mark.slow
def test_mixed_bfloat16_run_keeps_float32_checkpoint_and_exports(tmp_path, tiny_data):
    run = RunConfig(model=ModelConfig('cnn'), dataset=tiny_data.name, epochs=3, batch_size=50)
    result = train_and_eval(run, tiny_data, log_dir=str(tmp_path / 'logs'),
                            checkpoint_dir=str(tmp_path / 'ckpt'), precision='mixed_bfloat16',
                            progress=False, log=lambda line: None)
    assert result.history[-1].test_accuracy >= 0.9
    assert read_run_config(result.checkpoint_dir).precision == 'mixed_bfloat16'
    reader = tf.train.load_checkpoint(result.checkpoint_path)
    dtypes = reader.get_variable_to_dtype_map()
    assert 'cnn/conv1/weights' in dtypes
    assert set(dtypes.values()) <= {tf.float32, tf.int64}  # global_step is the int64.
    record = export.export_checkpoint(result.checkpoint_dir, 'float')
    assert record.graph == 'float' and len(record.model) > 0


@needs_bf16
@pytest.mark.slow
def test_quantize_with_mixed_bfloat16_exports_verified_int8(tmp_path, tiny_data):
    accuracy = {}
    for name in ('float32', 'mixed_bfloat16'):
        run = RunConfig(model=ModelConfig('cnn'), dataset=tiny_data.name, epochs=3,
                        batch_size=50, quantization=QuantizationConfig(), precision=name)
        result = train_and_eval(run, tiny_data, run_name=name, log_dir=str(tmp_path / 'logs'),
                                checkpoint_dir=str(tmp_path / 'ckpt'), progress=False,
                                log=lambda line: None)
        accuracy[name] = result.history[-1].test_accuracy
        reader = tf.train.load_checkpoint(result.checkpoint_path)
        assert reader.get_variable_to_dtype_map()['cnn/conv1/act_quant/max'] == tf.float32
        record = export.export_checkpoint(result.checkpoint_dir, 'int8')
        assert record.quantization == 'qat' and record.verified
    assert accuracy['mixed_bfloat16'] >= 0.9
    assert abs(accuracy['mixed_bfloat16'] - accuracy['float32']) <= 0.05


@pytest.mark.parametrize('style', ['functional', 'sequential', 'subclassed'])
def test_keras_twin_mixed_bfloat16_policy_is_scoped_and_softmax_float32(style):
    import keras
    from graph_models.nets import keras_twins
    before = keras.mixed_precision.global_policy().name
    model = keras_twins.build_keras_model('cnn', style=style, precision='mixed_bfloat16')
    assert keras.mixed_precision.global_policy().name == before  # Restored: nothing leaks.
    dense = [layer for layer in model.layers if layer.name in ('conv1', 'fc1', 'logits')]
    assert len(dense) == 3
    assert all(layer.dtype_policy.name == 'mixed_bfloat16' for layer in dense)
    assert {w.dtype for w in model.weights} == {'float32'}
    softmax = model.layers[-1]
    assert softmax.name == 'softmax' and softmax.dtype_policy.name == 'float32'
    out = model(np.zeros((2, 28, 28, 1), np.float32))
    assert out.dtype == tf.float32
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)
    # Float32 twins keep their single softmax Dense layer, and the weights fit both.
    plain = keras_twins.build_keras_model('cnn', style=style)
    assert plain.layers[-1].name == 'logits'
    plain.set_weights(model.get_weights())
    with pytest.raises(ConfigError, match='precision must be one of'):
        keras_twins.build_keras_model('cnn', precision='bfloat16')


@needs_bf16
@pytest.mark.slow
def test_compare_mixed_bfloat16_quick(tmp_path, tiny_data):
    import keras
    from conftest import write_idx_folder
    from graph_models.research import compare
    tiny_data.source = write_idx_folder(tmp_path / 'data', tiny_data)
    before = keras.mixed_precision.global_policy().name
    report = compare.compare('mlp_small', tiny_data, str(tmp_path / 'out'), quick=True,
                             precision='mixed_bfloat16', log=lambda line: None)
    assert report['precision'] == 'mixed_bfloat16'
    assert read_run_config(str(tmp_path / 'out' / 'checkpoints' / 'graph')).precision == \
        'mixed_bfloat16'
    assert keras.mixed_precision.global_policy().name == before
    assert report['graph']['test_accuracy'] > 0.5
    assert report['keras']['test_accuracy'] > 0.5
    assert 'mixed_bfloat16' in compare.markdown_table(report).splitlines()[0]


@needs_bf16
def test_rewrite_reaches_the_multi_step_loop_body():
    from graph_models.training.loop import EpochPipeline
    from graph_models.training.multistep import MultiStep
    run = RunConfig(model=ModelConfig('cnn'), precision='mixed_bfloat16', steps_per_run=4)
    pipelines, optimizers = [], []

    def pipeline():
        pipelines.append(EpochPipeline(run.model.input_shape, 20))
        return pipelines[0].next_batch()

    graph, tensors = graphs.build_training_graph(
        run.model, learning_rate=1e-3, seed=0, input_pipeline=pipeline,
        wrap_optimizer=lambda optimizer: optimizers.append(optimizer) or optimizer)
    with graph.as_default():
        multi = MultiStep(run.model, pipelines[0].next_batch, optimizers[0],
                          tensors.global_step)
        init = v1.global_variables_initializer()
    rng = np.random.default_rng(0)
    with v1.Session(graph=graph, config=session_config(run)) as session:
        session.run(init)
        pipelines[0].load(session, rng.integers(0, 256, (100, 28, 28), np.uint8),
                          rng.integers(0, 10, 100))
        pipelines[0].start(session, np.arange(100))
        metadata = v1.RunMetadata()
        fetched = session.run(multi.fetches, {multi.steps: 4}, run_metadata=metadata,
                              options=v1.RunOptions(output_partition_graphs=True))
        assert session.run(tensors.global_step) == 4
    assert fetched[2] == 80 and fetched[3] == -1  # 4 batches of 20, all losses finite.
    loop_ops = {op for name, (op, dtype) in precision.node_dtypes(metadata).items()
                if name.startswith('multi_step/') and dtype == 'bfloat16'}
    assert {'_MklNativeFusedConv2D', '_MklNativeConv2DBackpropInput'} <= loop_ops


def test_compare_quantize_refuses_mixed_bfloat16_in_one_line(capsys, tiny_data_dir, tmp_path):
    from graph_models.cli import main
    assert main(['compare', '--quantize', '--precision', 'mixed_bfloat16', '--data-dir',
                 tiny_data_dir, '--out', str(tmp_path / 'out')]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'graph-models compare: error: compare --quantize runs float32 (Keras QAT has no '
        'bfloat16 policy); leave out --precision']
    assert not (tmp_path / 'out').exists()
