"""``python -m bench [--quick]``: measures the real training path and the inference runtimes.

Writes ``bench/results/<UTC date-time>.{json,md}`` (``--quick``: ``bench/results/quick/``, so a
smoke run never replaces a full run's results). Every comparison is a ratio within the run:
the two sides run in alternating rounds and figures are medians, with the per-round spread.

Sections: real-path training (``graph_models.training.train.train_and_eval`` vs Keras ``fit`` with
per-epoch validation, same definitions, see `bench.realpath`); QAT vs float on the real path;
the training FLOP rate (FLOPs counted from the training graph, see `bench.flops`) against a
matmul micro-benchmark of the same shapes; where the step time goes (`bench.profile`) and the
ceiling it puts on the graph/Keras ratio; batch-1 latency (set input -> run -> get output)
of TF Session and LiteRT, and int8 vs the Keras twin converted with TFLiteConverter v2; the
steady-state step harness (`bench.throughput`, labelled as such).

``--precision mixed_bfloat16`` trains the real-path graph side with the bfloat16 rewrite and
adds the Keras twin at the same precision beside Keras float32 (ratios against both);
``--steps-per-run K`` gives the graph side K steps per Session call. The products-only floor
is measured in float32 and, on CPUs with avx512_bf16 or amx_bf16, in bfloat16, so each ratio
has its own ceiling beside it.
"""

import argparse
import os
import sys
import tempfile

from bench import common, flops, latency, process, profile, realpath, throughput

TARGETS = {
    'mlp graph / Keras training throughput (real path)': ('>=', 3.0),
    'cnn graph / Keras training throughput (real path)': ('>=', 2.0),
    'mlp Keras / graph wall time incl. evaluation': ('>=', 2.0),
    'mlp training FLOP rate / matmul FLOP rate (real path)': ('>=', 0.6),
    'mlp QAT / float training time (real path)': ('<=', 1.3),
    'cnn QAT / float training time (real path)': ('<=', 1.3),
    'mlp int8 .tflite latency / Keras-v2 int8': ('<=', 1.05),
    'cnn int8 .tflite latency / Keras-v2 int8': ('<=', 1.05),
    # With --precision mixed_bfloat16: the graph against Keras at the same precision.
    'cnn graph / Keras mixed_bfloat16 training throughput (real path)': ('>=', 1.3),
    # Whole processes from the shell (bench.process): start-up, data and evaluation included.
    'cnn whole process: Keras float32 script / graph-models train': ('>=', 2.0),
    'mlp whole process (float32): Keras float32 script / graph-models train': ('>=', 2.0),
    # The real-path step over the products-only floor of its own precision.
    'mlp graph step / its products-only floor': ('<=', 1.25),
    'cnn graph step / its products-only floor': ('<=', 1.25),
}
FULL = {'epochs': 5, 'batch_size': 100, 'rounds': 3}
QUICK = {'epochs': 1, 'batch_size': 100, 'rounds': 1}


def load_data(quick: bool, dataset: str, data_dir):
    """Full runs: the real dataset (Fashion-MNIST 60k by default); quick: 600/200 random."""
    from graph_models import data as data_lib
    if not quick:
        return data_lib.load_dataset(dataset, data_dir, download=False)
    import numpy as np
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (800, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 800).astype(np.int64)
    return data_lib.Dataset(dataset, images[:600], labels[:600], images[600:], labels[600:],
                            '<random>')


def headline(results) -> dict:
    """The figures the targets speak of."""
    r, q, lat, f = (results['real_path'], results['qat_cost'], results['latency'],
                    results['flops'])
    same_precision = {}
    if 'throughput_ratio_keras_mixed' in r['cnn']:
        same_precision['cnn graph / Keras mixed_bfloat16 training throughput (real path)'] = \
            r['cnn']['throughput_ratio_keras_mixed']['median']
    return {**same_precision,
        'mlp graph / Keras training throughput (real path)':
            r['mlp']['throughput_ratio']['median'],
        'cnn graph / Keras training throughput (real path)':
            r['cnn']['throughput_ratio']['median'],
        'mlp Keras / graph wall time incl. evaluation': r['mlp']['wall_ratio']['median'],
        'mlp training FLOP rate / matmul FLOP rate (real path)':
            f['mlp_real_path_over_matmul'],
        'mlp QAT / float training time (real path)': q['mlp']['qat_over_float']['median'],
        'cnn QAT / float training time (real path)': q['cnn']['qat_over_float']['median'],
        'mlp int8 .tflite latency / Keras-v2 int8': lat['mlp']['int8_over_keras_v2_int8'],
        'cnn int8 .tflite latency / Keras-v2 int8': lat['cnn']['int8_over_keras_v2_int8'],
        'cnn whole process: Keras float32 script / graph-models train':
            results['whole_process']['cnn']['keras_over_graph']['median'],
        'mlp whole process (float32): Keras float32 script / graph-models train':
            results['whole_process']['mlp']['keras_over_graph']['median'],
        'mlp graph step / its products-only floor': results['ceiling']['mlp']['graph_over_floor'],
        'cnn graph step / its products-only floor': results['ceiling']['cnn']['graph_over_floor'],
    }


def _speed_ratio_table(title: str, per_model, base: str, other: str, ratio: str,
                       header: str) -> list:
    """A section of per-model training speed under two settings and their time ratio (median,
    min-max over rounds)."""
    lines = ['', title, '', header, '| --- | --- | --- | --- |']
    for model, r in per_model.items():
        q = r[ratio]
        lines.append(f"| {model} | {r[base]['examples_per_s']:,.0f} | "
                     f"{r[other]['examples_per_s']:,.0f} | {q['median']:.2f}x "
                     f"({q['min']:.2f}-{q['max']:.2f}) |")
    return lines


def markdown(results) -> str:
    m, s = results['machine'], results['settings']
    lines = ['# Benchmarks' + (' (QUICK MODE: smoke values, not figures)' if results['quick']
                               else ''), '',
             f"Machine: {common.machine_line(m)}.", '',
             f"Command: `{results['command']}`; data: {s['dataset']} "
             f"({s['train_examples']:,} training / {s['test_examples']:,} test examples), "
             f"{s['epochs']} epochs, batch {s['batch_size']}, graph precision "
             f"{s.get('precision', 'float32')}, {s.get('steps_per_run', 1)} step(s) per run, "
             f"{s['rounds']} alternating rounds "
             '(medians; ratio spread min-max over rounds).', '',
             '| figure | measured | target | met |', '| --- | --- | --- | --- |']
    for name, value in results['headline'].items():
        op, target = TARGETS[name]
        met = value >= target if op == '>=' else value <= target
        lines.append(f'| {name} | {value:,.2f} | {op} {target} | {"yes" if met else "no"} |')
    lines += ['', '## Real path: `train_and_eval` vs Keras `fit` (same work per epoch)', '',
              'Training time runs from each epoch\'s pipeline start to its last step; '
              'evaluation and checkpoints are timed apart; wall time is the whole call.', '',
              '| model | side | training examples/s | training (s) | evaluation (s) | '
              'checkpoints (s) | wall (s) | test accuracy |',
              '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for model, r in results['real_path'].items():
        for side in ('graph', 'keras', 'keras_mixed'):
            if side not in r:
                continue
            x = r[side]
            label = {'graph': f"graph ({r.get('precision', 'float32')})",
                     'keras': 'keras (float32)', 'keras_mixed': 'keras (mixed_bfloat16)'}[side]
            lines.append(f"| {model} | {label} | {x['examples_per_s']:,.0f} | "
                         f"{x['train_seconds']:.2f} | {x['eval_seconds']:.2f} | "
                         f"{x['checkpoint_seconds']:.2f} | {x['wall_seconds']:.2f} | "
                         f"{x['test_accuracy']:.4f} |")
        t, w = r['throughput_ratio'], r['wall_ratio']
        lines.append(f"| {model} | graph / Keras float32 | {t['median']:.2f}x ({t['min']:.2f}-"
                     f"{t['max']:.2f}) | | | | {w['median']:.2f}x faster ({w['min']:.2f}-"
                     f"{w['max']:.2f}) | |")
        if 'throughput_ratio_keras_mixed' in r:
            t = r['throughput_ratio_keras_mixed']
            lines.append(f"| {model} | graph / Keras mixed_bfloat16 | {t['median']:.2f}x "
                         f"({t['min']:.2f}-{t['max']:.2f}) | | | | | |")
    lines += ['', '## Whole processes from the shell: `graph-models train` vs a Keras float32 '
              'script', '',
              'Each side is a fresh process timed from spawn to exit (imports, data loading, '
              'graph building or compiling, training, evaluation on the test set after every '
              'epoch): `python -m graph_models train` against `bench.process.KERAS_SCRIPT` '
              '(the Keras twin, `fit` with `validation_data`), same IDX files.', '',
              '| model | graph precision | graph process (s) | Keras float32 process (s) | '
              'Keras / graph | graph accuracy | Keras accuracy |',
              '| --- | --- | --- | --- | --- | --- | --- |']
    for model, r in results['whole_process'].items():
        q = r['keras_over_graph']
        lines.append(f"| {model} | {r['precision']} | {r['graph']['wall_seconds']:.1f} | "
                     f"{r['keras']['wall_seconds']:.1f} | {q['median']:.2f}x ({q['min']:.2f}-"
                     f"{q['max']:.2f}) | {r['graph']['test_accuracy']:.4f} | "
                     f"{r['keras']['test_accuracy']:.4f} |")
    lines += _speed_ratio_table('## QAT vs float training (real path)', results['qat_cost'],
                                'float', 'qat', 'qat_over_float',
                                '| model | float examples/s | QAT examples/s | QAT / float '
                                'training time |')
    f = results['flops']
    lines += ['', '## MLP training FLOP rate', '',
              f"- FLOPs per step (batch {s['batch_size']}, counted from the graph): "
              f"{f['mlp_step']['total'] / 1e6:.1f} M = products "
              f"{f['mlp_step']['matmul'] / 1e6:.1f} M + Adam {f['mlp_step']['optimizer'] / 1e6:.2f}"
              f" M + minor {f['mlp_step']['minor'] / 1e6:.2f} M; products: "
              + ', '.join(f'{n} {mkn}' for n, _, _, mkn in f['mlp_step']['products']),
              f"- matmul micro-benchmark of those shapes: TF {f['tf_matmul_flops'] / 1e9:.1f} "
              f"GFLOP/s, numpy {f['numpy_matmul_flops'] / 1e9:.1f} GFLOP/s",
              f"- real path: {f['mlp_real_path_flops'] / 1e9:.1f} GFLOP/s = "
              f"{f['mlp_real_path_over_matmul']:.0%} of the faster matmul rate "
              f"({f['mlp_real_path_flops'] / f['tf_matmul_flops']:.0%} of TF's); steady state: "
              f"{f['mlp_steady_state_flops'] / 1e9:.1f} GFLOP/s = "
              f"{f['mlp_steady_state_over_matmul']:.0%}"]
    lines += ['', '## Where the step time goes (real training graph)', '',
              'Products only: the step\'s matmuls and convolutions (forward and backward, same '
              'shapes and attributes) alone in one Session run, the floor of any step on this '
              'runtime. The graph/Keras throughput ratio cannot exceed the ceiling, Keras\' '
              'step over that floor. The bfloat16 floor runs the same products on bfloat16 '
              'operands (CPUs with avx512_bf16 or amx_bf16): the ceiling of a '
              'mixed_bfloat16 step. Adam only: the step\'s Adam updates alone (float32 in '
              'both precisions) in one Session run; (floor + Adam) / floor is how near its '
              'floor a step that also updates its weights can come.', '',
              '| model | products only float32 (ms) | products only bfloat16 (ms) | graph '
              'real-path step (ms) | graph step / its floor | Adam only (ms) | (floor + Adam) '
              '/ floor | Keras float32 step (ms) | ceiling of graph / Keras float32 (float32 '
              'floor; bfloat16 floor) |',
              '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for model, c in results['ceiling'].items():
        bf16 = c.get('products_only_bfloat16_step_ms')
        bf16_ceiling = c.get('bfloat16_ceiling_over_keras')
        lines.append(f"| {model} | {c['products_only_step_ms']:.2f} | "
                     f"{'n/a' if bf16 is None else f'{bf16:.2f}'} | "
                     f"{c['graph_step_ms']:.2f} ({c['graph_precision']}) | "
                     f"{c['graph_over_floor']:.2f}x | {c['optimizer_only_step_ms']:.2f} | "
                     f"{c['floor_and_optimizer_over_floor']:.2f}x | {c['keras_step_ms']:.2f} | "
                     f"{c['ceiling_over_keras']:.2f}x; "
                     f"{'n/a' if bf16_ceiling is None else f'{bf16_ceiling:.2f}x'} |")
    lines += ['', 'Per-op times of traced steps (`python -m bench.profile --model M`; op times '
              'overlap on the two intra-op threads and include tracing):']
    lines += profile.markdown(results['profile'])
    lines += ['', '## Batch-1 latency (us, median of set input -> run -> get output)', '',
              '| model | TF Session | float .tflite | int8 .tflite (graph, v1) | '
              'int8 .tflite (Keras, v2) | graph / Keras int8 | checkpoint -> int8 export (s) |',
              '| --- | --- | --- | --- | --- | --- | --- |']
    for model, r in results['latency'].items():
        lines.append(f"| {model} | {r['session_batch1_us']:.1f} | "
                     f"{r['tflite_float_batch1_us']:.1f} | {r['tflite_int8_batch1_us']:.1f} | "
                     f"{r['keras_v2_tflite_int8_batch1_us']:.1f} | "
                     f"{r['int8_over_keras_v2_int8']:.2f}x | "
                     f"{r['checkpoint_to_int8_export_s']:.2f} |")
    lines += _speed_ratio_table('## --xla on the real path (training time with / without)',
                                results['xla'], 'default', 'xla', 'xla_over_default',
                                '| model | default examples/s | --xla examples/s | --xla / '
                                'default time |')
    lines += ['', '## Steady-state step harness (NOT the real path: constant batches, '
              'train_op only; for reference)', '',
              '| model | graph, feed_dict | graph, in-graph tf.data | Keras fit (warm) |',
              '| --- | --- | --- | --- |']
    for model, r in results['steady_state'].items():
        lines.append(f"| {model} | {r['graph_feed_dict_examples_per_s']:,.0f} | "
                     f"{r['graph_in_graph_data_examples_per_s']:,.0f} | "
                     f"{r['keras_fit_examples_per_s']:,.0f} |")
    return '\n'.join(lines) + '\n'


def _write_error(folder: str, error: OSError) -> int:
    print(f'python -m bench: error: cannot write results to {folder} '
          f'({error.strerror or error}); free disk space or choose another --out',
          file=sys.stderr)
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='tiny random data, one epoch, one round (smoke test of the '
                             'harness); writes to <out>/quick/')
    parser.add_argument('--out', default=None,
                        help=f'results folder (default {common.RESULTS_DIR})')
    parser.add_argument('--dataset', default='fashion_mnist', choices=['mnist', 'fashion_mnist'])
    parser.add_argument('--data-dir', default=None,
                        help='data folder (default: the installed or cached dataset)')
    parser.add_argument('--precision', default='float32',
                        choices=['float32', 'mixed_bfloat16'],
                        help='training precision of the real-path graph side; with '
                             'mixed_bfloat16 the Keras twin also runs at it, beside Keras '
                             'float32 (default float32)')
    parser.add_argument('--steps-per-run', type=int, default=1, metavar='K',
                        help='training steps per Session call on the real-path graph side '
                             '(default 1)')
    args = parser.parse_args(argv)
    from graph_models.nets import precision as precision_lib
    from graph_models.system.cpu import read_cpuinfo
    from graph_models.errors import ConfigError
    try:
        precision_lib.check_supported(args.precision, read_cpuinfo())
    except ConfigError as e:
        print(f'python -m bench: error: {e.for_cli()}', file=sys.stderr)
        return 2
    if args.steps_per_run < 1:
        print('python -m bench: error: --steps-per-run must be at least 1, got '
              f'{args.steps_per_run}', file=sys.stderr)
        return 2
    # The bfloat16 floor and Keras peer only where the graph side's rewrite can run (oneDNN on).
    has_bf16 = common.has_bf16()
    out = common.results_folder(args.out, args.quick)
    try:  # A full or unwritable --out fails now, not after minutes of measuring.
        common.check_writable(out)
    except OSError as e:
        return _write_error(out, e)
    settings = dict(QUICK if args.quick else FULL)
    data = common.load_or_exit('python -m bench',
                               lambda: load_data(args.quick, args.dataset, args.data_dir))
    settings.update(precision=args.precision, steps_per_run=args.steps_per_run,
                    dataset=data.name, data_source=data.source,
                    train_examples=len(data.train_labels), test_examples=len(data.test_labels))
    results = {'machine': common.machine_info(), 'quick': args.quick, 'settings': settings,
               'command': 'python -m bench' + (' ' + ' '.join(argv if argv is not None
                                                                else sys.argv[1:])).rstrip()}
    run_args = {k: settings[k] for k in ('epochs', 'batch_size', 'rounds')}
    results['real_path'] = {m: realpath.graph_vs_keras(data, m, precision=args.precision,
                                                       steps_per_run=args.steps_per_run,
                                                       **run_args)
                            for m in ('mlp', 'cnn')}
    results['qat_cost'] = {m: realpath.qat_vs_float(data, m, **run_args) for m in ('mlp', 'cnn')}
    # XLA on the real path, fewer epochs (it only decides --xla's default).
    xla_args = dict(run_args, epochs=min(2, settings['epochs']))
    results['xla'] = {m: realpath.xla_vs_default(data, m, **xla_args)
                      for m in (('mlp',) if args.quick else ('mlp', 'cnn'))}
    # Whole processes: the CNN at the asked precision, the MLP in float32 (the figures).
    with tempfile.TemporaryDirectory() as folder:
        idx = process.write_idx_folder(data, os.path.join(folder, 'data'))
        results['whole_process'] = {
            m: process.graph_vs_keras_process(
                m, dataset=data.name, data_dir=idx, epochs=settings['epochs'],
                batch_size=settings['batch_size'], rounds=settings['rounds'],
                precision=args.precision if m == 'cnn' else 'float32')
            for m in ('mlp', 'cnn')}
    results['latency'] = latency.measure(quick=args.quick)
    results['steady_state'] = throughput.measure(quick=args.quick)

    step = flops.model_step_flops('mlp', settings['batch_size'])
    shapes = [mkn for _, kind, _, mkn in step['products'] if kind == 'MatMul']
    f = flops.matmul_rate(shapes, quick=args.quick)
    f['mlp_step'] = step
    steps_per_s = (results['real_path']['mlp']['graph']['examples_per_s'] /
                   settings['batch_size'])
    f['mlp_real_path_flops'] = steps_per_s * step['total']
    f['mlp_real_path_over_matmul'] = f['mlp_real_path_flops'] / f['machine_matmul_flops']
    steady = results['steady_state']['mlp']
    f['mlp_steady_state_flops'] = max(steady['graph_feed_dict_examples_per_s'],
                                      steady['graph_in_graph_data_examples_per_s']) / \
        settings['batch_size'] * step['total']
    f['mlp_steady_state_over_matmul'] = f['mlp_steady_state_flops'] / f['machine_matmul_flops']
    results['flops'] = f
    results['profile'] = {m: profile.op_profile(data, m, batch_size=settings['batch_size'],
                                                steps=5 if args.quick else 30)
                          for m in ('mlp', 'cnn')}
    results['ceiling'] = {}
    for m in ('mlp', 'cnn'):
        repeats = 10 if args.quick else 100
        seconds = flops.model_products_only_seconds(m, settings['batch_size'], repeats=repeats)
        # Emulated bfloat16 products (no avx512_bf16/amx_bf16) would be no floor of anything.
        bf16_seconds = flops.model_products_only_seconds(
            m, settings['batch_size'], repeats=repeats,
            precision='mixed_bfloat16') if has_bf16 else None
        # Adam's updates: work every step does after its products, whatever its precision.
        adam_seconds = flops.model_optimizer_only_seconds(m, repeats=repeats)
        rate = settings['batch_size'] / seconds
        real = results['real_path'][m]
        graph_step = settings['batch_size'] / real['graph']['examples_per_s']
        own_floor = bf16_seconds if args.precision == 'mixed_bfloat16' else seconds
        results['ceiling'][m] = {
            'products_only_step_ms': seconds * 1e3, 'products_only_examples_per_s': rate,
            'products_only_bfloat16_step_ms': None if bf16_seconds is None
            else bf16_seconds * 1e3,
            'graph_precision': args.precision,
            'graph_step_ms': graph_step * 1e3, 'graph_over_floor': graph_step / own_floor,
            'optimizer_only_step_ms': adam_seconds * 1e3,
            'floor_and_optimizer_over_floor': (own_floor + adam_seconds) / own_floor,
            'keras_step_ms': settings['batch_size'] / real['keras']['examples_per_s'] * 1e3,
            'ceiling_over_keras': rate / real['keras']['examples_per_s'],
            'bfloat16_ceiling_over_keras': None if bf16_seconds is None else
            settings['batch_size'] / bf16_seconds / real['keras']['examples_per_s']}
    results['headline'] = headline(results)
    text = markdown(results)
    try:
        path = common.write_results(results, text, out)
    except OSError as e:
        return _write_error(out, e)
    print(text)
    print(f'written: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
