"""Where a real training step spends its time: per-op times from TensorFlow's step trace.

``python -m bench.profile --model cnn`` builds the training graph ``graph-models train`` builds
(`graph_models.training.train` with its in-graph pipeline), runs warm-up steps, then traces steps
with
``RunOptions.FULL_TRACE`` and reports each op's mean time and the step's time by kind:

- ``products``: matrix products and convolutions, forward and backward (``MatMul``,
  ``Conv2D``, both ``Conv2DBackprop*``, and their fused oneDNN forms such as
  ``_MklFusedMatMul``, which take the name of the activation they absorbed);
- ``optimizer``: the Adam updates (``*ApplyAdam``);
- ``other``: everything else (input gather, pooling, activations, loss, reductions).

Op times are each op's own wall time on its thread; ops on the two intra-op threads overlap,
so the kinds add up to more than the step. These are the kernels Keras ``fit`` calls too:
when ``products`` alone approach the Keras step time, no graph-side change can win by much.
"""

import argparse
import collections
import re
import sys
import tempfile
import time
from typing import Dict

import numpy as np

from bench import common
from graph_models import data as data_lib
from graph_models._tf import v1
from graph_models.nets.factory import ModelConfig
from graph_models.training.run_config import RunConfig

# The op type is in the trace's timeline label: "<name> = <type>(<inputs>)".
_LABEL = re.compile(r'^[^=]+= (?P<type>[\w]+)\(')
PRODUCT_TYPES = re.compile(r'MatMul|Conv2D')
OPTIMIZER_TYPES = re.compile(r'ApplyAdam')


def op_kind(op_type: str) -> str:
    """``products``, ``optimizer`` or ``other`` for an op type of the trace."""
    if PRODUCT_TYPES.search(op_type):
        return 'products'
    if OPTIMIZER_TYPES.search(op_type):
        return 'optimizer'
    return 'other'


def op_profile(data: data_lib.Dataset, name: str, *, batch_size: int = 100, warmup: int = 20,
               steps: int = 30, top: int = 12) -> Dict:
    """Traces ``steps`` training steps of model ``name`` on ``data`` (after ``warmup``).

    Returns:
      ``{'step_us': mean untraced step time, 'kinds_us': kind -> summed op time per step,
      'top': [(op name, op type, mean us per step)] of the ``top`` slowest ops}``.
    """
    from graph_models.training.train import _TrainingRun
    run = RunConfig(model=ModelConfig(name), dataset=data.name, epochs=1,
                    batch_size=batch_size, data_source=data.source)
    with tempfile.TemporaryDirectory() as folder:
        training = _TrainingRun(run, folder, keep_checkpoints=1, float_checkpoint=None,
                                restoring=False)
        try:
            session = training.session
            session.run(training.init_op)
            training.pipeline.load(session, data.train_images, data.train_labels)
            # Enough epochs' orders for every step below (a small split repeats).
            n = len(data.train_labels)
            epochs = -(-(warmup + 2 * steps) * batch_size // n)
            training.pipeline.start(session, np.concatenate(
                [data_lib.epoch_order(n, run.seed, e) for e in range(epochs)]))
            step = training.local.step_fns[False, False]
            for _ in range(warmup):
                step()
            began = time.perf_counter()
            for _ in range(steps):
                step()
            step_us = (time.perf_counter() - began) / steps * 1e6
            options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
            times: Dict = collections.Counter()
            types: Dict[str, str] = {}
            for _ in range(steps):
                metadata = v1.RunMetadata()
                session.run(training.tensors.train_op, options=options, run_metadata=metadata)
                for device in metadata.step_stats.dev_stats:
                    for node in device.node_stats:
                        match = _LABEL.match(node.timeline_label)
                        types[node.node_name] = match['type'] if match else '?'
                        times[node.node_name] += node.all_end_rel_micros
        finally:
            training.close()
    per_step = {op: us / steps for op, us in times.items()}
    kinds: Dict[str, float] = collections.Counter()
    for op, us in per_step.items():
        kinds[op_kind(types[op])] += us
    slowest = sorted(per_step.items(), key=lambda item: -item[1])[:top]
    return {'step_us': step_us, 'kinds_us': dict(kinds),
            'top': [(op, types[op], us) for op, us in slowest]}


def markdown(profiles: Dict[str, Dict]) -> list:
    """Lines of the profile section, one table per model."""
    lines = []
    for name, p in profiles.items():
        k = p['kinds_us']
        lines += ['', f"{name}: untraced step {p['step_us'] / 1e3:.2f} ms; op time per step: "
                      f"products {k.get('products', 0) / 1e3:.2f} ms, optimizer "
                      f"{k.get('optimizer', 0) / 1e3:.2f} ms, other {k.get('other', 0) / 1e3:.2f}"
                      ' ms', '', '| op | type | us per step |', '| --- | --- | --- |']
        lines += [f'| {op} | {kind} | {us:,.0f} |' for op, kind, us in p['top']]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.profile', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='mlp', choices=['mlp', 'cnn'])
    parser.add_argument('--dataset', default='fashion_mnist', choices=['mnist', 'fashion_mnist'])
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('--steps', type=int, default=30, help='traced steps (default 30)')
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f'--steps must be at least 1, got {args.steps}')
    data = common.load_or_exit('python -m bench.profile', lambda: data_lib.load_dataset(
        args.dataset, args.data_dir, download=False))
    print('\n'.join(markdown({args.model: op_profile(data, args.model, steps=args.steps)})))
    return 0


if __name__ == '__main__':
    sys.exit(main())
