"""The long fuzz run (not part of the test suite): many hypothesis examples per parser.

    python tests/fuzz_parsers.py [--examples 20000]

Prints how many inputs each target was given and whether any raised something other than the
project's own error.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fuzz_targets as targets  # noqa: E402
from test_fuzz import mutated  # noqa: E402

CASES = {
    'idx bytes': (targets.idx_bytes, 'idx', 4096),
    'idx .gz file': (targets.idx_file, 'idx_gz', 2048),
    'npz file': (targets.npz_file, 'npz', 2048),
    'tflite header': (targets.tflite_file, 'tflite', 256),
    'GraphDef .pb': (targets.graph_def_file, None, 1024),
    # Only mutants (flips, cuts, appended bytes) of a real converted model: random bytes would
    # mostly stop at the TFL3 check, before the FlatBuffer reader.
    'tflite FlatBuffer reader (inspect)': (targets.tflite_inspect, 'tflite_model', None),
}


def run(examples: int, only=None) -> int:
    total = 0
    for name, (target, seed, size) in CASES.items():
        if only and only not in name:
            continue
        count = [0]
        if seed == 'tflite_model':
            targets.SEEDS[seed] = targets.tiny_tflite()
        strategy = st.binary(max_size=size) if size else None
        if seed:
            strategy = (st.one_of(strategy, mutated(targets.SEEDS[seed])) if strategy is not None
                        else mutated(targets.SEEDS[seed]))

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def fuzz(content):
            count[0] += 1
            target(content)

        began = time.perf_counter()
        fuzz()
        print(f'{name}: {count[0]:,} inputs, no unexpected exception '
              f'({time.perf_counter() - began:.1f} s)', flush=True)
        total += count[0]
    print(f'total: {total:,} inputs')
    return 0


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--examples', type=int, default=20000, help='examples per target')
    parser.add_argument('--only', help='run only the targets whose name contains this')
    arguments = parser.parse_args()
    sys.exit(run(arguments.examples, arguments.only))
