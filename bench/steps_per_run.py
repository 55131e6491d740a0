"""Training steps per ``Session.run``: the real path at K = 1, 4 and 16, against Keras float32.

``python -m bench.steps_per_run --model mlp`` trains model M with `bench.realpath.graph_run`
(``train_and_eval``, what ``graph-models train --steps-per-run K`` runs) at K = 1, 4 and 16,
in float32 and, where the CPU has avx512_bf16 or amx_bf16 (and oneDNN is on), in
mixed_bfloat16, and the Keras twin's float32 ``fit`` (`bench.realpath.keras_run`), all sides
in alternating rounds (order flipped each round). It prints each side's median training
throughput, its per-step time and its per-round throughput ratio to Keras float32 (median,
min-max). K only removes per-call dispatch (`graph_models.training.multistep`), so it can only
show where a step is short next to one Session call.
"""

import statistics
import sys
from typing import Dict, List

from bench import common
from bench.realpath import alternate, graph_run, keras_run
from graph_models import data as data_lib

STEPS = (1, 4, 16)


def sweep(data: data_lib.Dataset, name: str, *, epochs: int, batch_size: int, rounds: int,
          precisions: List[str]) -> Dict[str, Dict]:
    """Runs the sides; returns ``{side: {'examples_per_s', 'step_ms', 'over_keras': (median,
    min, max)}}`` for sides ``'<precision> K=<k>'`` and ``'keras float32'``."""
    from graph_models.nets.factory import ModelConfig
    from graph_models.training.run_config import RunConfig

    def run(precision, k):
        return RunConfig(model=ModelConfig(name), dataset=data.name, epochs=epochs,
                         batch_size=batch_size, data_source=data.source, precision=precision,
                         steps_per_run=k)
    sides = {f'{p} K={k}': (lambda p=p, k=k: graph_run(data, run(p, k)))
             for p in precisions for k in STEPS}
    sides['keras float32'] = lambda: keras_run(data, name, epochs, batch_size)
    runs = alternate(sides, rounds)
    keras = runs['keras float32']
    out = {}
    for side, results in runs.items():
        rate = statistics.median(r['examples_per_s'] for r in results)
        ratios = [r['examples_per_s'] / k['examples_per_s'] for r, k in zip(results, keras)]
        out[side] = {'examples_per_s': rate, 'step_ms': batch_size / rate * 1e3,
                     'over_keras': (statistics.median(ratios), min(ratios), max(ratios))}
    return out


def main(argv=None) -> int:
    args, data = common.section_cli('python -m bench.steps_per_run', __doc__, argv)
    precisions = ['float32'] + (['mixed_bfloat16'] if common.has_bf16() else [])
    result = sweep(data, args.model, epochs=args.epochs, batch_size=100, rounds=args.rounds,
                   precisions=precisions)
    print(common.machine_line(common.machine_info()))
    for side, r in result.items():
        m, lo, hi = r['over_keras']
        print(f"{args.model} {side}: {r['examples_per_s']:,.0f} examples/s, step "
              f"{r['step_ms']:.3f} ms, / Keras float32 {m:.2f}x ({lo:.2f}-{hi:.2f})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
