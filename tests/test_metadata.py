"""TFLite metadata: FlatBuffer round trip, labels file, interpreter unaffected, CLI."""

import io
import zipfile

import numpy as np
import pytest

from freeze import metadata

FASHION = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
           'Sneaker', 'Bag', 'Ankle boot']


@pytest.fixture(scope='module')
def tiny_tflite():
    """A float 784 -> 10 softmax .tflite (one dense layer)."""
    from graph_models._tf import tf, v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [1, 784], name='Input')
        w = tf.constant(np.random.default_rng(0).normal(size=(784, 10)).astype(np.float32) * 0.1)
        y = tf.nn.softmax(tf.matmul(x, w), name='Output')
        with v1.Session(graph=graph) as session:
            converter = v1.lite.TFLiteConverter.from_session(session, [x], [y])
            return converter.convert()


def _run(model, image):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'], image)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]['index'])


def test_round_trip_and_interpreter_unchanged(tiny_tflite):
    info = metadata.ModelInfo(name='cnn', description='Fashion-MNIST classifier', version='1',
                              author='graph-models', license='Apache-2.0', labels=FASHION)
    model = metadata.add_metadata(tiny_tflite, info)
    assert model[4:8] == b'TFL3'
    back = metadata.read_metadata(model)
    assert back.name == 'cnn' and back.description == 'Fashion-MNIST classifier'
    assert back.version == '1' and back.author == 'graph-models'
    assert back.license == 'Apache-2.0' and back.min_parser_version == '1.0.0'
    assert back.labels == FASHION
    assert back.mean == [0.0] and back.std == [255.0] and tuple(back.image_size) == (28, 28)
    assert metadata.associated_files(model) == ['labels.txt']
    assert metadata.metadata_bytes(model)[4:8] == b'M001'
    image = np.random.default_rng(1).random((1, 784), dtype=np.float32)
    np.testing.assert_array_equal(_run(model, image), _run(tiny_tflite, image))
    # Writing again replaces (not stacks) the metadata and the archive.
    again = metadata.add_metadata(model, metadata.ModelInfo(name='v2', labels=list('abcdefghij')))
    assert metadata.read_metadata(again).labels == list('abcdefghij')
    assert metadata.read_metadata(again).name == 'v2'
    with zipfile.ZipFile(io.BytesIO(again)) as z:
        assert z.namelist() == ['labels.txt']
    assert abs(len(again) - len(model)) < 200


def test_no_metadata_and_bad_labels(tiny_tflite):
    assert metadata.read_metadata(tiny_tflite) is None
    assert metadata.format_metadata(None) == 'metadata: none'
    with pytest.raises(metadata.MetadataError, match='3 labels for an output of shape'):
        metadata.add_metadata(tiny_tflite, metadata.ModelInfo(name='x', labels=['a', 'b', 'c']))
    with pytest.raises(metadata.MetadataError, match='not a TFLite model'):
        metadata.add_metadata(b'\0' * 64, metadata.ModelInfo(name='x'))


def test_freeze_metadata_does_not_import_graph_models():
    import ast
    tree = ast.parse(open(metadata.__file__).read())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [n for n in names if n and n.startswith('graph_models')]
