"""TensorFlow 1 graph-mode MNIST models on TensorFlow 2.21 (``tf.compat.v1``).

Modules:
  data: MNIST / Fashion-MNIST loading, validation, download and batching (numpy only).
  layers: variable-scoped dense, conv and batch-norm building blocks.
  mlp, cnn: the model builders ``(inputs, num_classes, is_training, scope) -> (logits,
    end_points)``.
  nets_factory: model names -> builders, and `ModelConfig`.
  graphs: training and inference graphs with the stable tensor names.
  run_config: the JSON contract between training and export.
  loop: the one training loop (`TrainingLoop` on a plain Session or a
    MonitoredTrainingSession), the in-graph input pipeline and the run-folder policy.
  train: `train_and_eval`, single-process training and per-epoch evaluation.
  distributed: ps/worker cluster training on the same loop.
  evaluator: `Evaluator`, scoring checkpoints in a run's inference graph.
  cli, commands: the ``graph-models`` command (one module per subcommand in ``commands``).

The README's Layout section lists every module.
"""

__version__ = '0.1.0'
