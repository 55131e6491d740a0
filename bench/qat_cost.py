"""Cost of quantization-aware training: QAT vs float training step time, same model and data.

Both graphs are built as ``graph-models train`` builds them (the QAT one with the
``create_training_graph`` rewrite) and fed the same batches; steps are timed in alternating
rounds and compared by median.
"""

from typing import Dict

import numpy as np

from bench.common import interleaved_medians
from graph_models import graphs
from graph_models._tf import v1
from graph_models.nets_factory import ModelConfig
from graph_models.quantize import QuantizationConfig


def _step_function(config: ModelConfig, quantization, images, labels, batch_size):
    rewrite = quantization.training_rewrite() if quantization else None
    graph, t = graphs.build_training_graph(config, learning_rate=1e-3, seed=0, rewrite=rewrite)
    with graph.as_default():
        init = v1.global_variables_initializer()
    session = v1.Session(graph=graph)
    session.run(init)
    batches = [(images[i:i + batch_size], labels[i:i + batch_size])
               for i in range(0, len(images) - batch_size + 1, batch_size)]
    state = {'i': 0}

    def step():
        x, y = batches[state['i'] % len(batches)]
        state['i'] += 1
        session.run(t.train_op, {t.model.inputs: x, t.labels: y})

    return step, session


def measure(quick: bool = False, batch_size: int = 100) -> Dict:
    """Seconds per training step, float vs QAT, for the MLP and the CNN.

    Returns:
      model -> {'float_step_s', 'qat_step_s', 'qat_over_float', 'float_examples_per_s',
      'qat_examples_per_s'}.
    """
    rng = np.random.default_rng(0)
    results = {}
    for name, iterations in (('mlp', 50), ('cnn', 10)):
        config = ModelConfig(name)
        images = rng.random((2000,) + config.input_shape, dtype=np.float32)
        labels = rng.integers(0, 10, 2000)
        steps, sessions = {}, []
        for label, quantization in (('float', None), ('qat', QuantizationConfig())):
            steps[label], session = _step_function(config, quantization, images, labels,
                                                   batch_size)
            sessions.append(session)
            for _ in range(3 if quick else 10):  # Warm-up: kernels, allocations.
                steps[label]()
        medians = interleaved_medians(steps, iterations=2 if quick else iterations,
                                      repeats=2 if quick else 7)
        for session in sessions:
            session.close()
        results[name] = {
            'float_step_s': medians['float'], 'qat_step_s': medians['qat'],
            'qat_over_float': medians['qat'] / medians['float'],
            'float_examples_per_s': batch_size / medians['float'],
            'qat_examples_per_s': batch_size / medians['qat'],
        }
    return results
