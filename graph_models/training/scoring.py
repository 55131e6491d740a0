"""Scoring checkpoints during and after training: `Evaluator`.

An `Evaluator` is a run's inference graph (no dropout, moving batch-norm statistics, the
quantization eval rewrite for a quantized run) in its own session. It restores checkpoint
after checkpoint through `graph_models.training.restore.restore_variables`, the one restore path
(names
and shapes checked first, every failure a `CheckpointError`), and evaluates arrays in chunks.
Training scores each epoch with it; comparison and the benchmarks score finished runs.
"""

from typing import Optional, Tuple

import numpy as np

from graph_models.nets import graphs
from graph_models._tf import v1
from graph_models.nets.factory import ModelConfig
from graph_models.training.restore import restore_variables
from graph_models.training.run_config import RunConfig

# Examples per session.run when evaluating (the CNN's activations of 1000 images: ~100 MB).
EVAL_BATCH = 1000


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy of ``logits [N, C]`` against int ``labels [N]``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(labels)), labels].mean())
    accuracy = float((logits.argmax(axis=1) == labels).mean())
    return loss, accuracy


class Evaluator:
    """An inference graph in its own session that restores checkpoints and evaluates arrays.

    Args:
      model_config: which network.
      batch_size: static batch size of the graph, or None for a dynamic one.
      rewrite: in-place rewrite of the inference graph (for example the quantization eval
        rewrite).
    """

    @classmethod
    def for_run(cls, run: RunConfig, batch_size: Optional[int] = None) -> 'Evaluator':
        """The evaluator of a run: quantized (eval rewrite) when the run was."""
        rewrite = run.quantization.eval_rewrite() if run.quantization else None
        return cls(run.model, batch_size=batch_size, rewrite=rewrite)

    def __init__(self, model_config: ModelConfig, batch_size: Optional[int] = None,
                 rewrite: Optional[graphs.GraphRewrite] = None):
        self.graph, self.model = graphs.build_inference_graph(
            model_config, batch_size=batch_size, rewrite=rewrite)
        with self.graph.as_default():
            self._variables = v1.global_variables()
            self._saver = v1.train.Saver(self._variables)
            self._global_step = v1.train.get_global_step()
        self.session = v1.Session(graph=self.graph)

    def restore(self, checkpoint_path: str) -> int:
        """Restores a checkpoint (names and shapes checked first); returns its global step.

        Raises:
          CheckpointError: the checkpoint does not fit the graph or cannot be read.
        """
        restore_variables(self.session, checkpoint_path, self._variables, saver=self._saver)
        return int(self.session.run(self._global_step))

    def logits(self, images: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Runs ``Logits`` over float ``images [N, ...]`` in chunks; returns ``[N, C]``."""
        chunks = [self.session.run(self.model.logits, {self.model.inputs: images[i:i + batch_size]})
                  for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> Tuple[float, float]:
        """Mean cross-entropy and accuracy on float ``images`` and int ``labels``."""
        return softmax_cross_entropy(self.logits(images), labels)

    def close(self):
        self.session.close()
