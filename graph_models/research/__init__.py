"""Research: the graph models against their Keras twins, with statistics.

Modules:
  compare: ``graph-models compare``: both sides trained and scored over seeds, the report.
  keras_qat: our QAT rewrite against Keras QAT (TFMOT), exported and scored alike.
  statistics: means, sample deviations and paired 95% intervals.

May import: every wing below (`graph_models.litert`, `graph_models.export`, training, nets).
"""
