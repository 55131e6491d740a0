"""Class names that travel with a model: from the dataset into the ``.tflite`` metadata, and
back out of it for ``predict``, ``eval`` and ``inspect``.
"""

from typing import List, Optional, Tuple

from graph_models import data as data_lib

DESCRIPTIONS = {
    'mnist': 'Handwritten digit classifier (MNIST, 28x28 grayscale, 10 classes)',
    'fashion_mnist': 'Clothing classifier (Fashion-MNIST, 28x28 grayscale, 10 classes)',
}


def model_info(model_name: str, dataset: str, *, mode: str = 'float', version: str = '',
               input_range: Tuple[float, float] = (0.0, 1.0)):
    """The `freeze.metadata.ModelInfo` of one of our classifiers trained on ``dataset``.

    Args:
      model_name: the network (``mlp``, ``cnn``, ...).
      dataset: the training dataset; gives the labels and the description.
      mode: export mode (float, dynamic, int8, uint8), named in the description.
      version: model version string (for example the package version).
      input_range: the real ``(min, max)`` the model takes for pixels 0 and 255; the
        normalization ``(pixel - mean) / std`` maps one onto the other.
    """
    from freeze.metadata import ModelInfo
    from graph_models import __version__
    description = DESCRIPTIONS.get(dataset, f'{dataset} classifier')
    low, high = (float(v) for v in input_range)
    std = 255.0 / (high - low)
    return ModelInfo(name=f'{model_name}-{dataset}', version=version or __version__,
                     description=f'{description}; {mode} TFLite export of graph-models '
                                 f'{model_name}. Input: pixels scaled to [{low:g}, {high:g}], '
                                 'light strokes on a dark background.',
                     author='graph-models', labels=data_lib.class_names(dataset),
                     mean=(0.0 - low * std,), std=(std,))


def with_metadata(model: bytes, model_name: str, dataset: str, mode: str = 'float',
                  input_range: Tuple[float, float] = (0.0, 1.0)) -> bytes:
    """``model`` with the metadata and labels file of ``model_info``."""
    from freeze.metadata import add_metadata
    return add_metadata(model, model_info(model_name, dataset, mode=mode,
                                          input_range=input_range))


def labels_of(model: bytes, dataset: Optional[str] = None) -> List[str]:
    """Class names for a ``.tflite``: its metadata's labels file, else ``dataset``'s names,
    else the class indices."""
    from freeze.metadata import MetadataError, read_metadata
    try:
        info = read_metadata(model)
    except MetadataError:
        info = None
    if info is not None and info.labels:
        return list(info.labels)
    return data_lib.class_names(dataset or 'mnist')


def embed_in_export(record, dataset: Optional[str] = None) -> Optional[str]:
    """Adds metadata to an export record's model in place; returns the dataset used or None.

    A checkpoint export takes the model name and dataset from its run config; a frozen ``.pb``
    gets metadata only when ``dataset`` is given (we do not know what a foreign graph outputs).

    Args:
      record: a `freeze.export.ExportRecord`.
      dataset: the dataset the model classifies (overrides the run's).
    """
    model_name = 'model'
    if record.source_kind == 'checkpoint':
        from graph_models.run_config import read_run_config
        run = read_run_config(record.source)
        model_name, dataset = run.model.name, dataset or run.dataset
    if dataset is None:
        return None
    record.model = with_metadata(record.model, model_name, dataset, record.mode,
                                 tuple(record.input_range))
    return dataset


def read_model_metadata(model: bytes, path: str = 'the model'):
    """`freeze.metadata.read_metadata`, its errors as one-line `ModelFileError`s."""
    from freeze.metadata import MetadataError, read_metadata
    from graph_models.evaluate import ModelFileError
    try:
        return read_metadata(model)
    except MetadataError as e:
        raise ModelFileError(f'{path}: {e}') from None
