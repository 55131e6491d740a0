"""Class names that travel with a model: from the dataset into the ``.tflite`` metadata, and
back out of it for ``predict``, ``eval`` and ``inspect``.
"""

from typing import List, Optional, Tuple

from graph_models import data as data_lib


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


def read_model_metadata(model: bytes, path: str = 'the model'):
    """`freeze.metadata.read_metadata`, its errors as one-line `ModelFileError`s that name
    ``path`` and the fix."""
    from freeze.metadata import MetadataError, read_metadata
    from graph_models.litert.model_file import ModelFileError
    try:
        return read_metadata(model)
    except MetadataError as e:
        raise ModelFileError(f'{path}: {e}; export the model again') from None
