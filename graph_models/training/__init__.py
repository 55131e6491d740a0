"""Training: the run config, the one training loop, checkpoints and TensorBoard, scale-out.

Modules:
  run_config: ``run_config.json``, the contract between training and every later stage.
  train: `train_and_eval`, single-process training with per-epoch evaluation.
  loop: `TrainingLoop` (plain Session or MonitoredTrainingSession), the in-graph input
    pipeline and the run-folder policy.
  multistep: K training steps per ``Session.run``.
  scoring: `Evaluator`, scoring a run's checkpoints in its inference graph.
  checkpoints: finding and validating checkpoints.
  restore: restoring a run's variables into a rebuilt graph.
  tensorboard: training summaries, evaluation pictures and quantization ranges.
  distributed: ps/worker cluster training on the same loop.
  cluster_local: a whole cluster as local subprocesses, restarting lost tasks.

May import: `graph_models.nets` and everything below it.
"""
