"""``python -m bench [--quick]``: runs the benchmarks, writes bench/results/<date>.{json,md}."""

import argparse
import sys

from bench import common, qat_cost

TARGETS = {'qat_over_float': 1.5}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__)
    parser.add_argument('--quick', action='store_true',
                        help='a few iterations only (smoke test of the harness)')
    parser.add_argument('--out', default=common.RESULTS_DIR, help='results folder')
    args = parser.parse_args(argv)

    results = {'machine': common.machine_info(), 'quick': args.quick,
               'qat_cost': qat_cost.measure(quick=args.quick)}
    lines = ['# Benchmarks', '', f"Machine: {results['machine']['cpu']}, "
             f"{results['machine']['cores']} cores, TensorFlow "
             f"{results['machine']['tensorflow']}" + (' (quick mode)' if args.quick else ''),
             '', '## QAT vs float training step (batch 100, median of interleaved rounds)', '',
             '| model | float examples/s | QAT examples/s | QAT / float step time | target |',
             '| --- | --- | --- | --- | --- |']
    for model, r in results['qat_cost'].items():
        lines.append(f"| {model} | {r['float_examples_per_s']:,.0f} | "
                     f"{r['qat_examples_per_s']:,.0f} | {r['qat_over_float']:.2f}x | "
                     f"<= {TARGETS['qat_over_float']}x |")
    markdown = '\n'.join(lines) + '\n'
    path = common.write_results(results, markdown, args.out)
    print(markdown)
    print(f'written: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
