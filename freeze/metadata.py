"""TFLite model metadata (the ML Kit / TFLite Task Library format), written and read with
``flatbuffers`` alone.

``tflite-support``'s metadata writers would do this, but tflite-support 0.4.4 (the last release)
pins ``protobuf<4``, which TensorFlow 2.21 cannot run with, so this module writes the same
FlatBuffer itself, following ``tensorflow_lite_support/metadata/metadata_schema.fbs`` (file
identifier ``M001``, schema 1.0.0 fields only):

- ``ModelMetadata``: name, description, version, author, license, ``min_parser_version``, one
  ``SubGraphMetadata``;
- the input's ``TensorMetadata``: ``ImageProperties`` (grayscale, 28x28) and a
  ``NormalizationOptions`` process unit (``(x - mean) / std``; mean 0, std 255 maps [0, 255]
  pixels to the [0, 1] the models take);
- the output's ``TensorMetadata``: ``FeatureProperties``, ``Stats`` (0..1 probabilities) and
  the labels file as an ``AssociatedFile`` of type ``TENSOR_AXIS_LABELS``.

As the Task Library expects, the metadata FlatBuffer is a model buffer named
``TFLITE_METADATA`` in ``Model.metadata``, and associated files (``labels.txt``) are a zip
archive appended to the model. The interpreter ignores both. Like all of ``freeze/``, this
module stands alone.
"""

import dataclasses
import io
import zipfile
from typing import List, Optional, Sequence

import flatbuffers
from flatbuffers import number_types as N
from flatbuffers.table import Table

from freeze.errors import one_line

METADATA_NAME = 'TFLITE_METADATA'
METADATA_IDENTIFIER = b'M001'
MIN_PARSER_VERSION = '1.0.0'
LABELS_FILE = 'labels.txt'

# Enum and union values of metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2
_GRAYSCALE = 2
_FEATURE_PROPERTIES = 1
_IMAGE_PROPERTIES = 2
_NORMALIZATION_OPTIONS = 1
_MAX_METADATA_BYTES = 1 << 20
_MAX_LABELS_BYTES = 1 << 20


class MetadataError(ValueError):
    """The metadata cannot be written or read."""


@dataclasses.dataclass
class ModelInfo:
    """What the metadata says about a classifier.

    Attributes:
      name: model name.
      description: one paragraph on what the model does.
      version: model version string.
      author: who made it.
      license: its license.
      labels: class names by output index (the ``labels.txt`` associated file).
      mean, std: input normalization ``(pixel - mean) / std`` per channel.
      image_size: ``(width, height)`` of the input image.
      input_name, output_name: tensor names in the metadata.
      input_description, output_description: tensor descriptions.
      min_parser_version: the metadata parser version needed (read only).
    """

    name: str
    description: str = ''
    version: str = ''
    author: str = ''
    license: str = ''
    labels: Optional[List[str]] = None
    mean: Sequence[float] = (0.0,)
    std: Sequence[float] = (255.0,)
    image_size: Sequence[int] = (28, 28)
    input_name: str = 'image'
    output_name: str = 'probability'
    input_description: str = 'grayscale image, light strokes on a dark background'
    output_description: str = 'probability of each class'
    min_parser_version: str = MIN_PARSER_VERSION


# ---------------------------------------------------------------------------------------------
# Writing


def _table(builder: flatbuffers.Builder, fields) -> int:
    """Builds a table from ``[(slot, kind, value)]``; kind is ``off``, ``byte``, ``uint``."""
    builder.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
    for slot, kind, value in fields:
        if value is None:
            continue
        if kind == 'off':
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == 'byte':
            builder.PrependInt8Slot(slot, value, 0)
        elif kind == 'uint':
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _offsets_vector(builder: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats_vector(builder: flatbuffers.Builder, values: Sequence[float]) -> int:
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(float(value))
    return builder.EndVector()


def _string(builder: flatbuffers.Builder, text: str) -> Optional[int]:
    return builder.CreateString(text) if text else None


def metadata_buffer(info: ModelInfo) -> bytes:
    """The ``ModelMetadata`` FlatBuffer (identifier ``M001``) of a classifier."""
    b = flatbuffers.Builder(1024)
    # Input tensor: image properties + normalization.
    size = _table(b, [(0, 'uint', int(info.image_size[0])), (1, 'uint', int(info.image_size[1]))])
    image = _table(b, [(0, 'byte', _GRAYSCALE), (1, 'off', size)])
    in_content = _table(b, [(0, 'byte', _IMAGE_PROPERTIES), (1, 'off', image)])
    mean, std = _floats_vector(b, info.mean), _floats_vector(b, info.std)
    norm = _table(b, [(0, 'off', mean), (1, 'off', std)])
    unit = _table(b, [(0, 'byte', _NORMALIZATION_OPTIONS), (1, 'off', norm)])
    units = _offsets_vector(b, [unit])
    input_meta = _table(b, [(0, 'off', _string(b, info.input_name)),
                            (1, 'off', _string(b, info.input_description)),
                            (3, 'off', in_content), (4, 'off', units)])
    # Output tensor: probabilities with the labels file.
    feature = _table(b, [])
    out_content = _table(b, [(0, 'byte', _FEATURE_PROPERTIES), (1, 'off', feature)])
    stats = _table(b, [(0, 'off', _floats_vector(b, [1.0])),
                       (1, 'off', _floats_vector(b, [0.0]))])
    files = None
    if info.labels:
        label_file = _table(b, [(0, 'off', b.CreateString(LABELS_FILE)),
                                (1, 'off', b.CreateString('class names by output index')),
                                (2, 'byte', _TENSOR_AXIS_LABELS)])
        files = _offsets_vector(b, [label_file])
    output_meta = _table(b, [(0, 'off', _string(b, info.output_name)),
                             (1, 'off', _string(b, info.output_description)),
                             (3, 'off', out_content), (5, 'off', stats), (6, 'off', files)])
    subgraph = _table(b, [(2, 'off', _offsets_vector(b, [input_meta])),
                          (3, 'off', _offsets_vector(b, [output_meta]))])
    root = _table(b, [(0, 'off', _string(b, info.name)),
                      (1, 'off', _string(b, info.description)),
                      (2, 'off', _string(b, info.version)),
                      (3, 'off', _offsets_vector(b, [subgraph])),
                      (4, 'off', _string(b, info.author)),
                      (5, 'off', _string(b, info.license)),
                      (7, 'off', b.CreateString(MIN_PARSER_VERSION))])
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _model_schema():
    from ai_edge_litert import schema_py_generated as schema
    return schema


def _strip_zip(model: bytes) -> bytes:
    """The FlatBuffer part of a model, without an appended associated-files zip.

    The zip must go before repacking: the re-serialized FlatBuffer has another length, so an
    archive carried along inside it would no longer end the file.

    The archive's start follows from its end-of-central-directory record: the central
    directory sits ``cd_size`` bytes before the record and ``cd_offset`` bytes after the start.
    """
    import struct
    eocd = model.rfind(b'PK\x05\x06', max(0, len(model) - 65_557))
    if eocd < 0 or len(model) - eocd < 22:
        return model
    cd_size, cd_offset = struct.unpack('<II', model[eocd + 12:eocd + 20])
    start = eocd - cd_size - cd_offset
    if start <= 0 or model[start:start + 4] != b'PK\x03\x04':
        return model
    return model[:start]


def add_metadata(model: bytes, info: ModelInfo) -> bytes:
    """Returns ``model`` with the metadata of ``info`` and its labels file.

    Existing ``TFLITE_METADATA`` and associated files are replaced; the converter's own
    metadata entries (``min_runtime_version``, ``CONVERSION_METADATA``) are kept.

    Args:
      model: a ``.tflite`` FlatBuffer.
      info: what to write; ``info.labels`` must have one name per output class when given.

    Returns:
      The model bytes with metadata (the graph and weights unchanged).

    Raises:
      MetadataError: if ``model`` is not a TFLite model or the labels do not fit the output.
    """
    schema = _model_schema()
    if len(model) < 8 or model[4:8] != b'TFL3':
        raise MetadataError('not a TFLite model (no TFL3 FlatBuffer identifier)')
    flat = _strip_zip(model)
    try:
        obj = schema.ModelT.InitFromPackedBuf(bytearray(flat), 0)
    except Exception as e:  # pylint: disable=broad-except
        raise MetadataError(f'not a TFLite model ({e})') from None
    if not obj.subgraphs or not obj.subgraphs[0].outputs:
        raise MetadataError('not a TFLite model with a subgraph and an output')
    if info.labels is not None:
        subgraph = obj.subgraphs[0]
        shape = list(subgraph.tensors[subgraph.outputs[0]].shape)
        if not shape or shape[-1] != len(info.labels):
            raise MetadataError(f'{len(info.labels)} labels for an output of shape {shape}')
        if any('\n' in label for label in info.labels):
            raise MetadataError('a label contains a line break')
    data = list(metadata_buffer(info))
    entries = obj.metadata or []
    existing = [m for m in entries
                if (m.name.decode() if isinstance(m.name, bytes) else m.name) == METADATA_NAME]
    if existing:  # Reuse its buffer: no orphaned old metadata left in the model.
        obj.buffers[existing[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        obj.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(obj.buffers) - 1
        obj.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(flat) + 4096)
    builder.Finish(obj.Pack(builder), file_identifier=b'TFL3')
    out = bytes(builder.Output())
    if info.labels:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, 'w', zipfile.ZIP_STORED) as z:
            z.writestr(LABELS_FILE, '\n'.join(info.labels) + '\n')
        # Offsets in the appended archive are relative to its own start; zipfile (and the Task
        # Library's zip reader) locate it from the end-of-central-directory record.
        out += archive.getvalue()
    return out


# ---------------------------------------------------------------------------------------------
# Reading


def _str(table: Table, slot: int) -> str:
    o = table.Offset(4 + 2 * slot)
    return table.String(o + table.Pos).decode('utf-8', 'replace') if o else ''


def _sub(table: Table, slot: int) -> Optional[Table]:
    o = table.Offset(4 + 2 * slot)
    return Table(table.Bytes, table.Indirect(o + table.Pos)) if o else None


def _vec_tables(table: Table, slot: int) -> List[Table]:
    o = table.Offset(4 + 2 * slot)
    if not o:
        return []
    start, n = table.Vector(o), table.VectorLen(o)
    return [Table(table.Bytes, table.Indirect(start + 4 * i)) for i in range(min(n, 1000))]


def _vec_floats(table: Table, slot: int) -> List[float]:
    o = table.Offset(4 + 2 * slot)
    if not o:
        return []
    start, n = table.Vector(o), table.VectorLen(o)
    return [table.Get(N.Float32Flags, start + 4 * i) for i in range(min(n, 1000))]


def _byte(table: Table, slot: int) -> int:
    o = table.Offset(4 + 2 * slot)
    return table.Get(N.Int8Flags, o + table.Pos) if o else 0


def _uint(table: Table, slot: int) -> int:
    o = table.Offset(4 + 2 * slot)
    return table.Get(N.Uint32Flags, o + table.Pos) if o else 0


def metadata_bytes(model: bytes) -> Optional[bytes]:
    """The ``TFLITE_METADATA`` FlatBuffer of a model, or None when it has none."""
    schema = _model_schema()
    if len(model) < 8 or model[4:8] != b'TFL3':
        raise MetadataError('not a TFLite model (no TFL3 FlatBuffer identifier)')
    try:
        parsed = schema.Model.GetRootAs(model, 0)
        for i in range(parsed.MetadataLength()):
            entry = parsed.Metadata(i)
            if entry.Name() and entry.Name().decode() == METADATA_NAME:
                data = parsed.Buffers(entry.Buffer()).DataAsNumpy()
                if isinstance(data, int) or len(data) > _MAX_METADATA_BYTES:
                    return None
                return data.tobytes()
    except Exception as e:  # pylint: disable=broad-except
        raise MetadataError(f'not a TFLite model ({e})') from None
    return None


def associated_files(model: bytes) -> List[str]:
    """Names of the files in the zip appended to a model (empty when there is none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        return []


def read_associated_file(model: bytes, name: str) -> bytes:
    """Reads one associated file from the zip appended to a model (at most 1 MiB)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            info = archive.getinfo(name)
            if info.file_size > _MAX_LABELS_BYTES:
                raise MetadataError(f'associated file {name} is {info.file_size:,} bytes; '
                                    f'at most {_MAX_LABELS_BYTES:,} are read')
            return archive.read(name)
    except (zipfile.BadZipFile, KeyError):
        raise MetadataError(f'the model has no associated file {name}') from None


def read_metadata(model: bytes) -> Optional[ModelInfo]:
    """Parses the metadata a model carries (written by us or by tflite-support).

    Returns:
      A `ModelInfo` (labels from the output's ``TENSOR_AXIS_LABELS`` file), or None.

    Raises:
      MetadataError: when the metadata buffer is not a ``M001`` FlatBuffer.
    """
    data = metadata_bytes(model)
    if data is None:
        return None
    if len(data) < 8 or data[4:8] != METADATA_IDENTIFIER:
        raise MetadataError('the TFLITE_METADATA buffer is not a metadata FlatBuffer (M001)')
    try:
        root = Table(data, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, data, 0))
        info = ModelInfo(name=_str(root, 0), description=_str(root, 1), version=_str(root, 2),
                         author=_str(root, 4), license=_str(root, 5),
                         min_parser_version=_str(root, 7))
        subgraphs = _vec_tables(root, 3)
        if subgraphs:
            inputs, outputs = _vec_tables(subgraphs[0], 2), _vec_tables(subgraphs[0], 3)
            if inputs:
                info.input_name, info.input_description = _str(inputs[0], 0), _str(inputs[0], 1)
                content = _sub(inputs[0], 3)
                if content is not None and _byte(content, 0) == _IMAGE_PROPERTIES:
                    size = _sub(_sub(content, 1), 1)
                    if size is not None:
                        info.image_size = (_uint(size, 0), _uint(size, 1))
                for unit in _vec_tables(inputs[0], 4):
                    if _byte(unit, 0) == _NORMALIZATION_OPTIONS:
                        options = _sub(unit, 1)
                        info.mean, info.std = _vec_floats(options, 0), _vec_floats(options, 1)
            if outputs:
                info.output_name = _str(outputs[0], 0)
                info.output_description = _str(outputs[0], 1)
                for f in _vec_tables(outputs[0], 6):
                    if _byte(f, 2) == _TENSOR_AXIS_LABELS:
                        text = read_associated_file(model, _str(f, 0)).decode('utf-8', 'replace')
                        info.labels = [line for line in text.splitlines() if line]
                        break
    except MetadataError:
        raise
    except Exception as e:  # pylint: disable=broad-except
        raise MetadataError(f'unreadable model metadata ({type(e).__name__}: {e})') from None
    return info


def format_metadata(info: Optional[ModelInfo]) -> str:
    """Lines for ``inspect``, joined by newlines; a control character in a value read from the
    model (a newline in its description) is written as an escape, so each line stays one."""
    if info is None:
        return 'metadata: none'
    lines = [f'metadata: {info.name}' + (f' ({info.version})' if info.version else ''),
             f'  description: {info.description}' if info.description else None,
             f'  author: {info.author}' if info.author else None,
             f'  license: {info.license}' if info.license else None,
             f'  input {info.input_name}: {info.image_size[0]}x{info.image_size[1]}, '
             f'normalized (x - {list(info.mean)}) / {list(info.std)}',
             f'  output {info.output_name}: {info.output_description}',
             f'  labels ({LABELS_FILE}): ' + (', '.join(info.labels) if info.labels else 'none'),
             f'  metadata parser version: {info.min_parser_version}']
    return '\n'.join(one_line(line) for line in lines if line is not None)
