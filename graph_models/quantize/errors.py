"""The quantize toolkit's error types (it stands alone: it knows nothing of the project using it).

Both are ``ValueError``s, as TF 1.15's ``tf.contrib.quantize`` raised, and carry the exit status
a command line should use for them. This module imports nothing, so a command line can test for
them without loading TensorFlow.
"""


class QuantizeError(ValueError):
    """A graph cannot be rewritten (after the optimizer, an unfoldable batch norm...).

    Attributes:
      exit_code: 1 when the input is wrong, 2 for a bad request (usage error).
    """

    exit_code = 1


class QuantizeConfigError(QuantizeError):
    """Quantization settings out of range (bits outside 2-16, a negative delay...)."""

    exit_code = 2
