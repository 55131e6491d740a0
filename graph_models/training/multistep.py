"""Several training steps per ``Session.run``: an in-graph loop over the input pipeline.

Like Keras' ``steps_per_execution``: one ``Session.run`` runs up to ``steps_per_run`` training
steps in a ``tf.while_loop`` whose body takes the next batch from the
`graph_models.training.loop.EpochPipeline` (advancing its position counter), runs the network, and
applies Adam with the run's optimizer (same variables, same slots, same ``global_step``
increment per step). The loop runs one iteration at a time (``parallel_iterations=1``) and
each iteration's variable reads depend on the previous iteration's update, so every step sees
the weights the step before it wrote: the same sequence of updates as single steps.

What it saves is the per-step dispatch: the Python call, the Session's per-run set-up and the
fetch of loss and accuracy. `graph_models.training.loop.TrainingLoop` runs such chunks only between
cadence points (summaries, histograms, checkpoints), which it runs as single steps, so every
summary and checkpoint lands on the same step as without chunks.
"""

from typing import Callable

from graph_models._tf import tf, v1
from graph_models.nets.factory import ModelConfig, get_network_fn

# Name of the int32 scalar fed with the number of steps a run takes.
STEPS_PLACEHOLDER = 'steps_per_run'


class MultiStep:
    """The in-graph loop of training steps, built into the current default graph.

    Build it after the single-step training graph (whose variables and optimizer slots it
    reuses) and before the graph is finalized.

    Args:
      config: the network (built again in the loop body, reusing its variables).
      next_batch: returns the next ``(images, labels)`` batch tensors and advances the
        pipeline (`graph_models.training.loop.EpochPipeline.next_batch`).
      optimizer: the optimizer of the single step (its slots already exist).
      global_step: the global step variable (incremented once per step, as single steps do).

    Attributes:
      steps: int32 placeholder: how many steps one run takes.
      fetches: ``[loss_sum, accuracy_sum, examples, first_bad]``: loss and accuracy summed
        over the steps' examples (each step's batch mean times its batch size), the examples
        seen, and the zero-based index of the first step whose loss was not finite (-1: none).
    """

    def __init__(self, config: ModelConfig, next_batch: Callable, optimizer,
                 global_step: tf.Variable):
        self.steps = v1.placeholder(tf.int32, [], name=STEPS_PLACEHOLDER)
        variables = v1.trainable_variables()
        updates = v1.get_collection_ref(v1.GraphKeys.UPDATE_OPS)
        single_step_updates = len(updates)

        def body(i, loss_sum, accuracy_sum, examples, first_bad):
            # Reads of this iteration wait for the previous iteration's update (via ``i``).
            with tf.control_dependencies([i]):
                images, labels = next_batch()
                with v1.variable_scope(v1.get_variable_scope(), reuse=True):
                    logits, _ = get_network_fn(config, True)(images)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=labels, logits=logits))
                correct = tf.equal(tf.argmax(logits, axis=1), labels)
                accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
                # Batch-norm moving averages of this iteration (added to UPDATE_OPS by the
                # layers), then the same Adam step as the single step.
                with tf.control_dependencies(updates[single_step_updates:]):
                    grads = optimizer.compute_gradients(
                        loss, var_list=variables, gate_gradients=v1.train.Optimizer.GATE_NONE)
                    apply = optimizer.apply_gradients(grads, global_step=global_step)
                del updates[single_step_updates:]  # Loop-body ops: no use outside the loop.
            n = tf.cast(tf.shape(labels)[0], tf.float32)
            bad = tf.logical_and(first_bad < 0, tf.logical_not(tf.math.is_finite(loss)))
            with tf.control_dependencies([apply]):
                return (i + 1, loss_sum + loss * n, accuracy_sum + accuracy * n,
                        examples + tf.cast(n, tf.int32), tf.where(bad, i, first_bad))

        zero = tf.constant(0.0)
        outputs = tf.while_loop(lambda i, *_: i < self.steps, body,
                                [tf.constant(0), zero, zero, tf.constant(0), tf.constant(-1)],
                                parallel_iterations=1, name='multi_step')
        self.fetches = list(outputs[1:])
