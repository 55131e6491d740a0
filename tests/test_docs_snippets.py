"""Issue 23: every fenced snippet of README.md and docs/**/*.md runs as copied, and does what the
page says it does.

Each page runs in a fresh folder laid out like a checkout beside its data::

    tmp/work/                  a copy of the repository (its files, as a fresh clone has them)
    tmp/shared/data/mnist-10k  a link to the real data, so ../shared/data/mnist-10k resolves

with ``graph-models``, ``python`` and ``tensorboard`` from this test's virtual environment on
``PATH``. The page's blocks run in order in ``tmp/work``, so a later block reads what an earlier
one wrote: ``bash`` blocks under ``set -euo pipefail``, ``python`` blocks on the environment's
Python (read from stdin, as pasted into ``python`` at the repository root). A block that is only
``tensorboard --logdir DIR`` is started on a free port, must answer over HTTP and list the runs
of DIR, and is stopped. ``text`` blocks are sample output or file trees and are not run; a fence
in any other language fails `test_every_fence_is_known`.

Every runnable block has an entry in `EXPECT`: the files it writes and the lines it prints (and
for some, further checks), asserted after it ran. A block without an entry, or an entry without a
block, fails `test_every_snippet_has_expectations`: exit status 0 alone passes nothing.
"""

import dataclasses
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Optional, Tuple

import pytest

from conftest import REPO_ROOT

VENV_BIN = os.path.dirname(sys.executable)
RUNNABLE = ('bash', 'python')
NOT_RUN = ('text',)  # Sample output and file trees.
FENCE = re.compile(r'^```([^\n`]*)\n(.*?)^```[ \t]*$', re.S | re.M)

# Commands the pages show that this test does not run, and why. Only `make test`: it is CI's own
# command and runs the whole suite, this test included, so running it here would recurse.
# `test_exemptions_are_only_make_test` keeps this list to that one command.
EXEMPT = ('make test',)

# The commands the snippets may start (the wrappers of the copy's .venv/bin, see _fake_venv).
VENV_COMMANDS = ('python', 'python3', 'pip', 'graph-models', 'tensorboard', 'mkdocs')

BLOCK_TIMEOUT = 900  # seconds; `make demo` trains 5 epochs and evaluates two models.


# ---------------------------------------------------------------------------------------------
# The pages and their blocks


@dataclasses.dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    lang: str
    text: str
    line: int  # of the opening fence, 1-based


def _pages():
    pages = ['README.md'] + sorted(
        os.path.relpath(path, REPO_ROOT)
        for path in glob.glob(os.path.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True))
    return [page for page in pages if os.path.isfile(os.path.join(REPO_ROOT, page))]


def _read(page):
    with open(os.path.join(REPO_ROOT, page), encoding='utf-8') as f:
        return f.read()


def _blocks(page):
    """Every fenced block of a page, runnable or not, in order."""
    text = _read(page)
    return [Block(page, match.group(1).strip(), match.group(2),
                  text.count('\n', 0, match.start()) + 1)
            for match in FENCE.finditer(text)]


def _runnable(page):
    return [block for block in _blocks(page) if block.lang in RUNNABLE]


def _command(line):
    """A shell line without its trailing comment and spaces."""
    return line.split(' #', 1)[0].strip()


def _without_exempt(text):
    """The block's lines minus the exempt commands, and the exempt commands it held."""
    kept, dropped = [], []
    for line in text.splitlines():
        (dropped if _command(line) in EXEMPT else kept).append(line)
    return '\n'.join(kept) + '\n', dropped


def _tensorboard_logdir(block):
    """DIR if the block is just ``tensorboard --logdir DIR`` (a server: started, checked, stopped)."""
    lines = [_command(line) for line in block.text.splitlines() if _command(line)]
    if block.lang == 'bash' and len(lines) == 1:
        match = re.fullmatch(r'tensorboard --logdir (\S+)', lines[0])
        if match:
            return match.group(1)
    return None


# ---------------------------------------------------------------------------------------------
# What each block must do


@dataclasses.dataclass(frozen=True)
class Expect:
    """What one runnable block must do.

    Attributes:
      contains: text the block holds (names the block, so a reordered page fails clearly).
      out: regular expressions that must match its output (stdout, then stderr; multiline).
      files: paths, relative to the work folder, that must exist after it ran.
      check: further checks, ``check(work, stdout, stderr)``.
    """

    contains: str
    out: Tuple[str, ...] = ()
    files: Tuple[str, ...] = ()
    check: Optional[Callable] = None


def _tf():
    from graph_models._tf import v1
    return v1


def _cli(*argv):
    """The toolkit in this process (TF 2.21 as usual), on what a snippet wrote."""
    from conftest import cli_output
    return cli_output(*argv)


def _integer_problems(path):
    from freeze.verify import structural_problems
    with open(path, 'rb') as f:
        return structural_problems(f.read())


def _number(pattern, text):
    match = re.search(pattern, text, re.M)
    assert match, (pattern, text)
    return float(match.group(1).replace(',', ''))


def _graph_def(path):
    v1 = _tf()
    graph_def = v1.GraphDef()
    with open(path, 'rb') as f:
        graph_def.ParseFromString(f.read())
    return graph_def


def _check_demo(work, stdout, stderr):
    run = os.path.join(work, 'checkpoints', 'mlp-mnist-qat')
    with open(os.path.join(run, 'run_config.json')) as f:
        config = json.load(f)
    assert config['epochs'] == 5 and config['quantization'] is not None
    assert _integer_problems(os.path.join(run, 'model_int8.tflite')) == []
    # Both models were scored: the float one and the int8 one, each with its latency.
    assert len(re.findall(r'accuracy 0\.9\d+ on 10000 mnist test examples', stdout)) == 2
    assert len(re.findall(r'latency \(batch 1, 1 thread, median\)', stdout)) == 2


def _check_readme_qat(work, stdout, stderr):
    assert _number(r'^loss ([\d.]+) ->', stdout) < 1.0  # It trained.
    # A weight and an activation quantizer per layer, the input's, the delay's counter.
    assert _number(r'^(\d+) fake-quant ops$', stdout) >= 5


def _check_frozen_session(work, stdout, stderr):
    graph_def = _graph_def(os.path.join(work, 'tutorial', 'frozen.pb'))
    ops = {node.op for node in graph_def.node}
    assert not ops & {'VariableV2', 'VarHandleOp', 'ReadVariableOp', 'Assign', 'SaveV2'}
    assert {'FakeQuantWithMinMaxVars', 'Softmax'} <= ops
    assert f'tutorial/frozen.pb: {len(graph_def.node)} nodes' in stdout


def _check_int8_run(work, stdout, stderr):
    assert _integer_problems(os.path.join(work, 'checkpoints', 'mlp-qat', 'model_int8.tflite')) \
        == []


def _check_tf1_program(work, stdout, stderr):
    """What tests/tf1_programs/mnist_mlp_qat.py wrote goes into the toolkit and TensorBoard."""
    out = os.path.join(work, 'mnist_qat')
    assert _number(r'test accuracy ([\d.]+)', stdout) > 0.8
    assert {'model.ckpt.meta', 'model.ckpt.index', 'checkpoint'} <= set(os.listdir(out))
    # The FileWriter log is TensorBoard's: the graph and the program's scalars.
    v1 = _tf()
    events = [f for f in os.listdir(os.path.join(out, 'logs'))
              if f.startswith('events.out.tfevents')]
    tags, graphs = set(), 0
    for event in v1.train.summary_iterator(os.path.join(out, 'logs', events[0])):
        graphs += bool(event.graph_def)
        tags |= {value.tag for value in event.summary.value}
    assert graphs == 1 and tags == {'cross_entropy', 'accuracy'}
    inspected = _cli('inspect', os.path.join(out, 'model.ckpt'))
    assert 'inputs: x [1, 784]' in inspected and 'outputs: probs' in inspected
    # The page exported int8; the integer check, and the float export of the same checkpoint.
    assert _integer_problems(os.path.join(out, 'model_int8.tflite')) == []
    _cli('export', os.path.join(out, 'model.ckpt'), '--quantize', 'float', '-o',
         os.path.join(out, 'float.tflite'))
    assert os.path.getsize(os.path.join(out, 'float.tflite')) > 0
    assert _number(r'agreement with the TF graph: ([\d.]+) top-1', stdout) > 0.97


def _check_tf1_switch(work, stdout, stderr):
    assert stdout == '(1, 10)\n'


def _check_library_run(work, stdout, stderr):
    # train_and_eval's own line per epoch (log=print), then the snippet's.
    assert re.match(r'epoch 1/1  step 100  train loss ', stdout)
    accuracy, path = stdout.splitlines()[-1].split()
    assert float(accuracy) > 0.85
    assert path == os.path.join('checkpoints', 'library-mlp', 'model.ckpt-100')
    assert os.path.isfile(os.path.join(work, path + '.index'))


def _check_cnn_qat(work, stdout, stderr):
    with open(os.path.join(work, 'checkpoints', 'cnn-mnist-qat', 'run_config.json')) as f:
        config = json.load(f)
    assert config['quantization']['quant_delay'] == 10 and config['limit'] == 2000


def _check_tour(work, stdout, stderr):
    tut = os.path.join(work, 'tut')
    assert _integer_problems(os.path.join(tut, 'mlp_int8.tflite')) == []
    ops = {node.op for node in _graph_def(os.path.join(tut, 'frozen.pb')).node}
    assert 'FakeQuantWithMinMaxVars' in ops and 'VariableV2' not in ops
    with open(os.path.join(tut, 'report', 'per_class.json')) as f:
        report = json.load(f)
    assert len(report['classes']) == 10 and report['examples'] == 10000
    assert sum(map(sum, report['confusion_matrix'])) == 10000
    assert f"accuracy {report['accuracy']:.4f} on 10000" in stdout  # The line eval printed.
    assert _number(r'agreement with the TF graph: ([\d.]+) top-1', stdout) > 0.98


def _check_compare(work, stdout, stderr):
    with open(os.path.join(work, 'runs', 'compare-mlp-mnist', 'report.json')) as f:
        report = json.load(f)
    assert report['quick'] is True and report['keras_style'] == 'subclassed'
    # Same model on both sides: the same parameter count.
    assert report['graph']['parameters'] == report['keras']['parameters'] == 407050


def _check_cluster(work, stdout, stderr):
    with open(os.path.join(work, 'checkpoints', 'cluster', 'checkpoint')) as f:
        assert 'model.ckpt-10"' in f.read()  # 1,000 examples, batches of 100: global step 10.


EXPECT = {
    'README.md': [
        Expect('make demo DATA_DIR=../shared/data/mnist-10k',
               out=(r'test accuracy 0\.9\d+ after 5 epochs',
                    r'model_float\.tflite: [\d,]+ bytes, float',
                    r'model_int8\.tflite: [\d,]+ bytes, int8 \(qat',
                    r'^Edge TPU: ready'),
               files=('checkpoints/mlp-mnist-qat/model_float.tflite',
                      'checkpoints/mlp-mnist-qat/model_int8.tflite',
                      'checkpoints/mlp-mnist-qat/model_int8.tflite.json'),
               check=_check_demo),
        Expect('graph-models run --data-dir ../shared/data/mnist-10k',
               out=(r'^test accuracy 0\.[89]', r'^saved mnist_qat/model\.ckpt$'),
               files=('mnist_qat/model.ckpt.index', 'mnist_qat/model.ckpt.meta')),
        Expect('graph-models train --model mlp --epochs 1',
               out=(r'^test accuracy 0\.[89]\d+ after 1 epochs \(step 100\)$',),
               files=('checkpoints/mlp-mnist/run_config.json', 'checkpoints/mlp-mnist/checkpoint',
                      'checkpoints/mlp-mnist/model.ckpt-100.meta', 'logs/mlp-mnist/train',
                      'logs/mlp-mnist/eval')),
        Expect('create_training_graph(input_graph=graph, quant_delay=0)',
               out=(r'-> tutorial/model\.ckpt$',),
               files=('tutorial/model.ckpt.index', 'tutorial/model.ckpt.meta'),
               check=_check_readme_qat),
        Expect('tensorboard --logdir logs',
               out=('"mlp-mnist/train"', '"mlp-mnist/eval"', '"mlp-mnist-qat/eval"')),
        Expect('freeze.freeze_session(sess, output_names=',
               files=('tutorial/frozen.pb',), check=_check_frozen_session),
        Expect('graph-models export checkpoints/mlp-qat --quantize int8',
               out=(r'test accuracy 0\.[89]\d+ after 1 epochs',
                    r'^checkpoints/mlp-qat/model_int8\.tflite: [\d,]+ bytes, int8 \(qat, qat_eval '
                    r'graph, verified',
                    r'^Edge TPU: ready \(every tensor 8-bit'),
               files=('checkpoints/mlp-qat/model_int8.tflite',
                      'checkpoints/mlp-qat/model_int8.tflite.json'),
               check=_check_int8_run),
    ],
    'docs/tf1-programs.md': [
        Expect('tests/tf1_programs/mnist_mlp_qat.py',
               out=(r'int8 \(qat, qat_eval graph, verified: mean \|diff\| ',
                    r'^Edge TPU: ready', r'accuracy 0\.9\d+ on 10000 mnist test examples'),
               files=('mnist_qat/model_int8.tflite',),
               check=_check_tf1_program),
        Expect('import graph_models.tf1 as tf', check=_check_tf1_switch),
    ],
    'docs/training.md': [
        Expect('graph-models train --model cnn --batch-norm',
               out=(r'^test accuracy 0\.\d+ after 1 epochs \(step 20\)$',
                    # Batch norm's moving statistics: 2 x (32 + 64 + 64) non-trainable.
                    r'^Total params: 93,802$', r'^Non-trainable params: 320$'),
               files=('checkpoints/cnn-bn/run_config.json', 'logs/cnn-bn/eval')),
        Expect('train_and_eval(run, data', check=_check_library_run),
    ],
    'docs/qat.md': [
        Expect('create_eval_graph(input_graph=eval_graph)',
               out=(r"^refused: the quantization rewrite must run after the loss is built and "
                    r"before the optimizer's minimize\(\)",
                    r'^conv/weights_quant/FakeQuantWithMinMaxVars$',
                    r'^logits/act_quant/FakeQuantWithMinMaxVars$',
                    r'^input_quant/FakeQuantWithMinMaxArgs$',
                    r"'conv/act_quant/min', 'conv/weights_quant/max'")),
        Expect('graph-models train --model cnn --quantize --quant-delay 10',
               out=(r'^test accuracy 0\.\d+ after 1 epochs \(step 20\)$',),
               files=('checkpoints/cnn-mnist-qat/model.ckpt-20.index',),
               check=_check_cnn_qat),
    ],
    'docs/export.md': [
        Expect('python examples/tf1_tutorial_mlp.py --epochs 1 --out-dir tut',
               out=(r'tf1_tutorial_mlp: 5 FakeQuant ops in the eval graph',
                    r'non-int8 tensors other than int32 biases: none',
                    r'^tut/frozen\.pb: QAT eval graph of .*input Input \[1, 784\], outputs Output',
                    r'^tut/mlp_int8\.tflite: 407,968 bytes, int8 \(qat',
                    r'^tut/mlp_int8\.tflite: accuracy 0\.[89]\d+ on 10000 mnist test examples',
                    r'^Edge TPU: ready'),
               files=('tut/model.ckpt.meta', 'tut/frozen.pb', 'tut/mlp_int8.tflite',
                      'tut/mlp_int8.tflite.json', 'tut/report/confusion_matrix.png',
                      'tut/report/mistakes.png', 'tut/report/per_class.json'),
               check=_check_tour),
        Expect("Image.fromarray(255 - mnist.test_images[i])",
               out=(r"\['test0-label7\.png', 'test1-label2\.png', 'test2-label1\.png'\]",),
               files=('digits/test0-label7.png',)),
        # The first three test digits, classified right.
        Expect('graph-models predict digits/',
               out=(r'^digits/test0-label7\.png: 7 \(confidence 0\.\d+\); then ',
                    r'^digits/test1-label2\.png: 2 \(confidence',
                    r'^digits/test2-label1\.png: 1 \(confidence')),
    ],
    'docs/architecture.md': [
        Expect('from graph_models.stats import mean_std',
               out=(r'^DeprecationWarning: graph_models\.stats moved to '
                    r'graph_models\.research\.statistics; import it from there',
                    r"^\{'mean': 0\.94\d+, 'std': 0\.00\d+")),
    ],
    'docs/cli.md': [
        Expect('graph-models --help',
               out=(r'^usage: graph-models \[-h\]', r'^usage: graph-models export',
                    r'--quantize \{float,dynamic,int8,uint8\}')),
        Expect('graph-models train --epochs 0',
               out=(r'^graph-models train: error: argument --epochs: must be a positive integer, '
                    r'got 0; see graph-models train --help$', r'^exit status 2$')),
    ],
    'docs/keras-compare.md': [
        Expect('graph-models compare --model mlp --keras-style subclassed --quick',
               out=(r'Top-1 agreement between the two frameworks',
                    r'^reports: runs/compare-mlp-mnist/report\.json'),
               files=('runs/compare-mlp-mnist/report.md', 'runs/compare-mlp-mnist/report.png'),
               check=_check_compare),
    ],
    'docs/reliability.md': [
        Expect('graph-models inspect bad.tflite',
               out=(r'^graph-models inspect: error: bad\.tflite is not a TensorFlow Lite model '
                    r'\(no FlatBuffer with the TFL3 identifier\)', r'^exit status 1$',
                    r'argument --epochs: must be a positive integer, got 0', r'^exit status 2$')),
    ],
    'docs/distributed.md': [
        Expect('graph-models cluster-local --workers 2 --ps 1',
               out=(r'^\[worker0\] worker0 \(chief\): checkpoint checkpoints/cluster/model\.ckpt-10,'
                    r' global step 10, test accuracy 0\.\d+',
                    r'^\[ps0\] ps0: all 2 worker\(s\) finished'),
               files=('checkpoints/cluster/run_config.json',),
               check=_check_cluster),
    ],
    'docs/data.md': [
        Expect("load_dataset('mnist', '../shared/data/mnist-10k')",
               out=(r'^\(10000, 28, 28\) uint8 \(10000,\)$', r'^Ankle boot$')),
    ],
}

# Pages whose blocks load no TensorFlow and train nothing: not marked slow.
FAST_PAGES = ('docs/architecture.md', 'docs/cli.md', 'docs/reliability.md', 'docs/data.md')


# ---------------------------------------------------------------------------------------------
# The structure: known fences, expectations for every block, the one exemption


def test_every_fence_is_known():
    for page in _pages():
        text = _read(page)
        # An indented fence (inside a list) would escape the parser: none are allowed.
        assert not re.search(r'^[ \t]+```', text, re.M), page
        assert text.count('```') == 2 * len(_blocks(page)), f'{page}: unbalanced fences'
        for block in _blocks(page):
            assert block.lang in RUNNABLE + NOT_RUN, \
                f'{page}:{block.line}: fence language {block.lang!r}; use bash, python or text'


def test_every_snippet_has_expectations():
    pages = {page for page in _pages() if _runnable(page)}
    assert pages == set(EXPECT), 'pages with snippets and EXPECT differ'
    for page in pages:
        blocks = _runnable(page)
        assert len(blocks) == len(EXPECT[page]), f'{page}: {len(blocks)} snippets, ' \
                                                 f'{len(EXPECT[page])} expectations'
        for block, expect in zip(blocks, EXPECT[page]):
            assert expect.contains in block.text, (page, block.line, expect.contains)
            assert expect.out or expect.files or expect.check, (page, block.line)


def test_exemptions_are_only_make_test():
    """`make test` is CI's own command (it would run this test inside itself); nothing else
    a page shows may be left out, and the exemption is used where the README shows it."""
    assert EXEMPT == ('make test',)
    dropped = [line for page in _pages() for block in _runnable(page)
               for line in _without_exempt(block.text)[1]]
    assert [_command(line) for line in dropped] == ['make test']
    # The README's quick start also shows `make demo`, which runs (only its test is exempt).
    readme = _runnable('README.md')[0]
    assert _without_exempt(readme.text)[0].startswith('make demo DATA_DIR=')


def test_readme_is_short_and_runs_its_five_tasks():
    readme = _read('README.md')
    assert len(readme) <= 12000
    headings = re.findall(r'^### (\d)\. ', readme, re.M)
    assert headings == ['1', '2', '3', '4', '5']
    # Each task has its snippet; the Edge TPU compiler is named as the next step.
    tasks = re.split(r'^### \d\. ', readme, flags=re.M)[1:]
    assert all(FENCE.search(task) for task in tasks)
    assert 'edgetpu_compiler' in tasks[4]
    # Its links lead to pages that exist (mkdocs --strict checks the pages' own links), and
    # to headings that exist.
    for target in re.findall(r'\]\(((?:docs/)[^)]+)\)', readme):
        path, _, anchor = target.partition('#')
        assert os.path.isfile(os.path.join(REPO_ROOT, path)), target
        if anchor:
            headings = re.findall(r'^#+ (.+)$', _read(path), re.M)
            slugs = {re.sub(r'[^\w\- ]', '', h.lower()).strip().replace(' ', '-')
                     for h in headings}
            assert anchor in slugs, target


def test_architecture_page_is_the_layout_the_tests_check():
    """docs/architecture.md is the reference for the layout: its ranks are the ones
    tests/test_layout.py enforces, and its table of old paths is what graph_models/_moved
    forwards."""
    from graph_models._moved import MOVED
    from test_layout import WING_RANKS
    page = _read('docs/architecture.md')
    ranks = {}
    for rank, wing in re.findall(r'^\| (\d) \| [^`|]*`([^`]+)`', page, re.M):
        dotted = wing.removesuffix('/').removesuffix('.py').removesuffix('/__init__')
        ranks[dotted.replace('/', '.')] = int(rank)
    assert ranks == WING_RANKS
    moved = {old: re.findall(r'`([\w.]+)`', new)
             for old, new in re.findall(r'^\| `(graph_models\.\w+)` \| (.+) \|$', page, re.M)}
    assert moved == MOVED


# ---------------------------------------------------------------------------------------------
# Running a page


def _copy_repo(work):
    """The repository's files as a fresh clone has them (tracked and new, not ignored ones)."""
    try:
        listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others',
                                 '--exclude-standard'], cwd=REPO_ROOT, capture_output=True,
                                check=True, timeout=60).stdout.decode().split('\0')
    except (OSError, subprocess.CalledProcessError):
        listed = None
    if listed is None:  # Not a git checkout: everything but what git would ignore anyway.
        skip = {'.git', '.venv', 'site', 'build', 'runs', '__pycache__', '.pytest_cache',
                '.hypothesis'}
        listed = []
        for folder, dirs, files in os.walk(REPO_ROOT):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith('.egg-info')]
            listed += [os.path.relpath(os.path.join(folder, f), REPO_ROOT) for f in files]
        listed = [p for p in listed
                  if not p.startswith(('checkpoints/', 'logs/', 'bench/results/'))]
    for relative in filter(None, listed):
        source = os.path.join(REPO_ROOT, relative)
        if not os.path.isfile(source):  # Deleted in the working tree.
            continue
        os.makedirs(os.path.join(work, os.path.dirname(relative)), exist_ok=True)
        shutil.copy2(source, os.path.join(work, relative))


def _fake_venv(work, env):
    """``work/.venv/bin``: wrappers of this test's environment, newer than setup.cfg, so the
    Makefile's targets find it installed and never create or change an environment."""
    bin_dir = os.path.join(work, '.venv', 'bin')
    os.makedirs(bin_dir)
    for name in VENV_COMMANDS:
        target = os.path.join(VENV_BIN, name)
        if name in ('python', 'python3'):
            target = sys.executable
        path = os.path.join(bin_dir, name)
        with open(path, 'w') as f:
            f.write(f'#!/bin/sh\nexec "{target}" "$@"\n')
        os.chmod(path, 0o755)
    # Up to date, or `make demo` would run `python3 -m venv` and pip here.
    proc = subprocess.run(['make', '-q', '.venv/bin/graph-models'], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _env(tmp):
    env = {k: v for k, v in os.environ.items()
           if k not in ('TF_USE_LEGACY_KERAS', 'PYTHONPATH', 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')}
    env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '/usr/bin:/bin')
    env['PYTHONPATH'] = os.path.join(tmp, 'work')
    # Nothing may download: every snippet names its data.
    env['GRAPH_MODELS_DATA'] = os.path.join(tmp, 'cache')
    env['MPLBACKEND'] = 'Agg'
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run_tensorboard(logdir, work, env):
    """Starts ``tensorboard --logdir logdir`` on a free port; returns the runs it lists."""
    port = _free_port()
    server = subprocess.Popen([os.path.join(VENV_BIN, 'tensorboard'), '--logdir', logdir,
                               '--host', '127.0.0.1', '--port', str(port)], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=5) as page:
                    assert page.status == 200
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/data/runs',
                                            timeout=5) as answer:
                    runs = answer.read().decode()
                if json.loads(runs):  # Loaded: the runs of the log folder are listed.
                    return runs
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            assert time.monotonic() < deadline, 'tensorboard did not answer in 120 s'
            time.sleep(0.5)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def _run_block(block, work, env):
    """Runs one block in ``work``; returns (status, stdout, stderr)."""
    logdir = _tensorboard_logdir(block)
    if logdir is not None:
        return 0, _run_tensorboard(logdir, work, env), ''
    if block.lang == 'python':
        argv, stdin = [sys.executable, '-'], block.text
    else:
        argv, stdin = ['bash', '-c', 'set -euo pipefail\n' + _without_exempt(block.text)[0]], None
    proc = subprocess.run(argv, input=stdin, cwd=work, env=env, capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def _check(block, expect, work, status, stdout, stderr):
    where = f'{block.page}:{block.line}'
    assert status == 0, f'{where} exited {status}\n{stdout}\n{stderr}'
    output = stdout + '\n' + stderr
    for pattern in expect.out:
        assert re.search(pattern, output, re.M), f'{where}: no {pattern!r} in\n{output}'
    for path in expect.files:
        assert os.path.exists(os.path.join(work, path)), f'{where} did not write {path}'
    if expect.check:
        expect.check(work, stdout, stderr)


def _page_params():
    params = []
    for page in sorted(EXPECT):
        marks = () if page in FAST_PAGES else (pytest.mark.slow,)
        params.append(pytest.param(page, marks=marks, id=page))
    return params


@pytest.mark.parametrize('page', _page_params())
def test_page_snippets_run_as_copied(page, tmp_path, mnist_10k_dir):
    tmp = str(tmp_path)
    work = os.path.join(tmp, 'work')
    os.makedirs(os.path.join(tmp, 'shared', 'data'))
    os.symlink(os.path.abspath(mnist_10k_dir), os.path.join(tmp, 'shared', 'data', 'mnist-10k'))
    _copy_repo(work)
    env = _env(tmp)
    _fake_venv(work, env)
    blocks = _runnable(page)
    assert len(blocks) == len(EXPECT[page])
    for block, expect in zip(blocks, EXPECT[page]):
        start = time.monotonic()
        status, stdout, stderr = _run_block(block, work, env)
        print(f'{block.page}:{block.line}: {time.monotonic() - start:.1f} s')
        _check(block, expect, work, status, stdout, stderr)
