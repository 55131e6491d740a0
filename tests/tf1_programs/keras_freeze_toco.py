"""Keras 2 MNIST classifier, frozen from the Keras session and converted with
tf.contrib.lite.toco_convert (the TensorFlow 1.x / Keras 2.2 recipe)."""
import argparse
import os

import keras
from keras import backend as K
from keras.layers import Dense, Dropout
from keras.models import Sequential
import tensorflow as tf


def freeze_session(session, keep_var_names=None, output_names=None, clear_devices=True):
    """Freezes the state of a session into a pruned computation graph (StackOverflow 45466020)."""
    graph = session.graph
    with graph.as_default():
        freeze_var_names = list(set(v.op.name for v in tf.global_variables()).difference(
            keep_var_names or []))
        output_names = output_names or []
        output_names += [v.op.name for v in tf.global_variables()]
        input_graph_def = graph.as_graph_def()
        if clear_devices:
            for node in input_graph_def.node:
                node.device = ''
        frozen_graph = tf.graph_util.convert_variables_to_constants(
            session, input_graph_def, output_names, freeze_var_names)
        return frozen_graph


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out_dir', default='/tmp/keras_mnist')
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--limit', type=int, default=60000)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train = x_train[:args.limit].reshape(-1, 784).astype('float32') / 255
    x_test = x_test.reshape(-1, 784).astype('float32') / 255
    y_train = keras.utils.to_categorical(y_train[:args.limit], 10)
    y_test = keras.utils.to_categorical(y_test, 10)

    model = Sequential()
    model.add(Dense(64, activation='relu', input_shape=(784,)))
    model.add(Dropout(0.2))
    model.add(Dense(10, activation='softmax'))
    model.compile(loss='categorical_crossentropy', optimizer=keras.optimizers.RMSprop(),
                  metrics=['accuracy'])
    model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    print('Test accuracy:', score[1])

    frozen_graph = freeze_session(K.get_session(),
                                  output_names=[out.op.name for out in model.outputs])
    if not os.path.isdir(args.out_dir):
        os.makedirs(args.out_dir)
    tf.train.write_graph(frozen_graph, args.out_dir, 'model.pb', as_text=False)
    tflite_model = tf.contrib.lite.toco_convert(frozen_graph, model.inputs, model.outputs)
    open(os.path.join(args.out_dir, 'model.tflite'), 'wb').write(tflite_model)
    print('input %s output %s' % (model.inputs[0].op.name, model.outputs[0].op.name))


if __name__ == '__main__':
    main()
