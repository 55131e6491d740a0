"""STEADY-STATE harness (not the real path; see bench.realpath): graph vs Keras fit step cost.

All three train the same architecture with Adam on the same random data, batch 100. Keras is
timed in steady state (after a warm-up ``fit`` that traces and compiles), one ``fit`` over the
whole array per round, as a user's epoch runs.
"""

from typing import Dict

import numpy as np

from bench.common import interleaved_medians
from graph_models.nets import graphs
from graph_models.nets import keras_twins
from graph_models._tf import tf, v1
from graph_models.nets.factory import ModelConfig

EXAMPLES = 2000


def _graph_session(config, batch_size, images=None, labels=None):
    def pipeline():
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
        dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(4)
        return v1.data.make_one_shot_iterator(dataset).get_next()

    graph, t = graphs.build_training_graph(config, learning_rate=1e-3, seed=0,
                                           input_pipeline=pipeline if images is not None
                                           else None)
    with graph.as_default():
        init = v1.global_variables_initializer()
    session = v1.Session(graph=graph)
    session.run(init)
    return session, t


def measure(quick: bool = False, batch_size: int = 100) -> Dict:
    """Examples per second of each variant and the graph/Keras ratios, for MLP and CNN."""
    rng = np.random.default_rng(0)
    results = {}
    for name in ('mlp', 'cnn'):
        config = ModelConfig(name)
        n = 400 if quick else (EXAMPLES if name == 'mlp' else 1000)
        images = rng.random((n,) + config.input_shape, dtype=np.float32)
        labels = rng.integers(0, 10, n).astype(np.int64)
        batches = [(images[i:i + batch_size], labels[i:i + batch_size])
                   for i in range(0, n, batch_size)]
        steps_per_round = len(batches)

        feed_session, ft = _graph_session(config, batch_size)
        pre_session, pt = _graph_session(config, batch_size, images, labels)

        def graph_feed():
            for x, y in batches:
                feed_session.run(ft.train_op, {ft.model.inputs: x, ft.labels: y})

        def graph_preloaded():
            for _ in range(steps_per_round):
                pre_session.run(pt.train_op)

        model = keras_twins.build_keras_model(name, dropout_rate=0.0)
        keras_twins.compile_like_graph(model)

        def keras_fit():
            model.fit(images, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)

        for warm in (graph_feed, graph_preloaded, keras_fit):
            warm()
        seconds = interleaved_medians({'graph_feed_dict': graph_feed,
                                       'graph_in_graph_data': graph_preloaded,
                                       'keras_fit': keras_fit},
                                      iterations=1, repeats=2 if quick else 5)
        feed_session.close()
        pre_session.close()
        rates = {k: n / v for k, v in seconds.items()}
        best_graph = max(rates['graph_feed_dict'], rates['graph_in_graph_data'])
        results[name] = {f'{k}_examples_per_s': v for k, v in rates.items()}
        results[name]['graph_best_over_keras'] = best_graph / rates['keras_fit']
    import keras
    keras.backend.clear_session()
    return results
