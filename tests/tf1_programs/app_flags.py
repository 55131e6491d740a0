"""Softmax regression on MNIST driven by tf.app.run and tf.flags (TensorFlow 1.x)."""
import tensorflow as tf
from tensorflow.examples.tutorials.mnist import input_data

flags = tf.flags
flags.DEFINE_string('data_dir', '/tmp/mnist', 'Directory for the MNIST data.')
flags.DEFINE_string('train_dir', '/tmp/softmax', 'Directory for the checkpoint.')
flags.DEFINE_integer('max_steps', 1000, 'Number of training steps.')
flags.DEFINE_float('learning_rate', 0.5, 'Learning rate.')
FLAGS = flags.FLAGS


def main(argv):
    tf.logging.set_verbosity(tf.logging.INFO)
    tf.logging.info('extra arguments: %s', argv[1:])
    mnist = input_data.read_data_sets(FLAGS.data_dir, one_hot=True)
    x = tf.placeholder(tf.float32, [None, 784], name='x')
    W = tf.Variable(tf.zeros([784, 10]), name='W')
    b = tf.Variable(tf.zeros([10]), name='b')
    y = tf.nn.softmax(tf.matmul(x, W) + b, name='y')
    y_ = tf.placeholder(tf.float32, [None, 10])
    loss = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y + 1e-10), reduction_indices=[1]))
    train = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(loss)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1)), tf.float32))
    saver = tf.train.Saver()
    with tf.Session() as sess:
        tf.global_variables_initializer().run()
        for _ in range(FLAGS.max_steps):
            xs, ys = mnist.train.next_batch(100)
            sess.run(train, feed_dict={x: xs, y_: ys})
        print('accuracy %.4f' % sess.run(accuracy, {x: mnist.test.images, y_: mnist.test.labels}))
        if not tf.gfile.Exists(FLAGS.train_dir):
            tf.gfile.MakeDirs(FLAGS.train_dir)
        saver.save(sess, FLAGS.train_dir + '/softmax.ckpt')


if __name__ == '__main__':
    tf.app.run()
