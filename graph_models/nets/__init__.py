"""The networks: graph builders in plain TF1 ops, their Keras twins, and how they compute.

Modules:
  architectures: the one table of the seed architectures (no TensorFlow), shared by both sides.
  layers: variable-scoped dense / conv / batch-norm / pooling blocks, and `build` from the table.
  mlp, cnn: the graph builders ``(inputs, num_classes, is_training, scope) -> (logits,
    end_points)``.
  factory: model names -> builders, `ModelConfig` (slim's ``nets_factory``).
  graphs: training and inference graphs with the pinned tensor names (``Input``, ``Output``).
  keras_twins: the same models in Keras 2 (tf-keras), for the side-by-side comparison.
  summary_table: the Keras-style layer table of a model.
  precision: float32 or mixed_bfloat16, for graphs (grappler's oneDNN rewrite) and Keras.

May import: the base modules, `graph_models.system`, `graph_models.quantize`.
"""
