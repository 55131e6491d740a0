"""``python -m bench [--quick]``: runs the benchmarks, writes bench/results/<date>.{json,md}.

Every figure is measured in this run; comparisons are ratios within the run (alternating
rounds, medians), so machine noise hits both sides alike.
"""

import argparse
import sys

from bench import common, flops, latency, qat_cost, throughput

TARGETS = {
    'mlp graph / Keras training throughput': ('>=', 3.0),
    'cnn graph / Keras training throughput': ('>=', 1.5),
    'mlp QAT / float training step time': ('<=', 1.5),
    'cnn QAT / float training step time': ('<=', 1.5),
    'mlp int8 .tflite batch-1 latency (us)': ('<=', 4.0),
    'mlp training FLOP rate / matmul FLOP rate': ('>=', 0.5),
}


def headline(results) -> dict:
    """The figures the targets speak of."""
    t, q, lat, f = (results['throughput'], results['qat_cost'], results['latency'],
                    results['flops'])
    return {
        'mlp graph / Keras training throughput': t['mlp']['graph_best_over_keras'],
        'cnn graph / Keras training throughput': t['cnn']['graph_best_over_keras'],
        'mlp QAT / float training step time': q['mlp']['qat_over_float'],
        'cnn QAT / float training step time': q['cnn']['qat_over_float'],
        'mlp int8 .tflite batch-1 latency (us)': lat['mlp']['tflite_int8_batch1_us'],
        'mlp training FLOP rate / matmul FLOP rate': f['mlp_training_over_matmul'],
    }


def markdown(results) -> str:
    m = results['machine']
    lines = ['# Benchmarks', '', f"Machine: {m['cpu']}, {m['cores']} cores, TensorFlow "
             f"{m['tensorflow']}, Python {m['python']}" + (' (quick mode: figures are only '
                                                            'smoke values)' if results['quick']
                                                            else ''), '',
             '| figure | measured | target | met |', '| --- | --- | --- | --- |']
    for name, value in results['headline'].items():
        op, target = TARGETS[name]
        met = value >= target if op == '>=' else value <= target
        lines.append(f'| {name} | {value:,.2f} | {op} {target} | {"yes" if met else "no"} |')
    lines += ['', '## Training throughput (examples/s, batch 100, steady state)', '',
              '| model | graph, feed_dict | graph, in-graph tf.data | Keras fit |',
              '| --- | --- | --- | --- |']
    for model, r in results['throughput'].items():
        lines.append(f"| {model} | {r['graph_feed_dict_examples_per_s']:,.0f} | "
                     f"{r['graph_in_graph_data_examples_per_s']:,.0f} | "
                     f"{r['keras_fit_examples_per_s']:,.0f} |")
    lines += ['', '## QAT vs float training step', '',
              '| model | float examples/s | QAT examples/s | QAT / float |',
              '| --- | --- | --- | --- |']
    for model, r in results['qat_cost'].items():
        lines.append(f"| {model} | {r['float_examples_per_s']:,.0f} | "
                     f"{r['qat_examples_per_s']:,.0f} | {r['qat_over_float']:.2f}x |")
    lines += ['', '## Batch-1 inference latency (median, us) and export time', '',
              '| model | TF Session | float .tflite | int8 .tflite | checkpoint -> int8 export (s) |',
              '| --- | --- | --- | --- | --- |']
    for model, r in results['latency'].items():
        lines.append(f"| {model} | {r['session_batch1_us']:.1f} | "
                     f"{r['tflite_float_batch1_us']:.1f} | {r['tflite_int8_batch1_us']:.1f} | "
                     f"{r['checkpoint_to_int8_export_s']:.2f} |")
    f = results['flops']
    lines += ['', '## MLP training FLOP rate', '',
              f"- matmul micro-benchmark, same shapes: TF {f['tf_matmul_flops'] / 1e9:.1f} "
              f"GFLOP/s, numpy {f['numpy_matmul_flops'] / 1e9:.1f} GFLOP/s",
              f"- MLP training (best graph variant): {f['mlp_training_flops'] / 1e9:.1f} "
              f"GFLOP/s = {f['mlp_training_over_matmul']:.0%} of the matmul rate"]
    return '\n'.join(lines) + '\n'


def _write_error(folder: str, error: OSError) -> int:
    print(f'python -m bench: error: cannot write results to {folder} '
          f'({error.strerror or error}); free disk space or choose another --out',
          file=sys.stderr)
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__)
    parser.add_argument('--quick', action='store_true',
                        help='a few iterations only (smoke test of the harness)')
    parser.add_argument('--out', default=common.RESULTS_DIR, help='results folder')
    args = parser.parse_args(argv)
    try:  # A full or unwritable --out fails now, not after minutes of measuring.
        common.check_writable(args.out)
    except OSError as e:
        return _write_error(args.out, e)

    results = {'machine': common.machine_info(), 'quick': args.quick}
    results['throughput'] = throughput.measure(quick=args.quick)
    results['qat_cost'] = qat_cost.measure(quick=args.quick)
    results['latency'] = latency.measure(quick=args.quick)
    results['flops'] = flops.matmul_rate(quick=args.quick)
    t = results['throughput']['mlp']
    best = max(t['graph_feed_dict_examples_per_s'], t['graph_in_graph_data_examples_per_s'])
    results['flops']['mlp_training_flops'] = best / 100 * flops.step_flops(100)
    results['flops']['mlp_training_over_matmul'] = (results['flops']['mlp_training_flops'] /
                                                    results['flops']['machine_matmul_flops'])
    results['headline'] = headline(results)
    text = markdown(results)
    try:
        path = common.write_results(results, text, args.out)
    except OSError as e:
        return _write_error(args.out, e)
    print(text)
    print(f'written: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
