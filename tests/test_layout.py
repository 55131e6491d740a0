"""Issue 23: the package is a house in wings. Checked from the source, not by importing it.

Each wing imports only the wings below it, no two files import each other in a circle (lazy
imports inside functions count too), and the two toolkits, ``freeze`` and
``graph_models.quantize``, import nothing else of ``graph_models``. The order is the one
docs/architecture.md describes.
"""

import ast
import os
import warnings

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bottom to top. A module imports only modules of its own wing or of a wing with a lower rank.
WING_RANKS = {
    'freeze': 0,
    'graph_models.quantize': 0,
    'graph_models': 1,  # The base: _tf, errors, fileio, data, pictures, and system/.
    'graph_models.nets': 2,
    'graph_models.training': 3,
    'graph_models.export': 4,
    'graph_models.litert': 5,
    'graph_models.research': 6,
    'graph_models.tf1': 7,
    'graph_models.commands': 8,
    'graph_models.cli': 9,
}
TOOLKITS = ('freeze', 'graph_models.quantize')


def _modules():
    """Dotted module name -> source path, for every file of both packages."""
    found = {}
    for package in ('graph_models', 'freeze'):
        for folder, _, files in os.walk(os.path.join(REPO_ROOT, package)):
            if '__pycache__' in folder or os.path.basename(folder) == '_moved':
                continue
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, '.')
                    found[dotted.removesuffix('.__init__')] = path
    return found


def _imports(path, dotted, modules):
    """The modules of both packages that ``path`` imports anywhere (lazy imports included)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    package = dotted if path.endswith('__init__.py') else dotted.rpartition('.')[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # import a.b.c -> the module a.b.c or a.b
                name = name.rpartition('.')[0]
            if name and name != dotted:
                targets.add(name)
    return targets


def _wing(dotted):
    if dotted.endswith('__main__'):
        return 'graph_models.cli'  # Every __main__.py is an entry point of the command line.
    if dotted.startswith('graph_models.system'):
        return 'graph_models'
    for wing in sorted(WING_RANKS, key=len, reverse=True):
        if dotted == wing or dotted.startswith(wing + '.'):
            return wing
    raise AssertionError(f'{dotted} belongs to no wing: add it to WING_RANKS')


def _rank(dotted):
    return WING_RANKS[_wing(dotted)]


def _graph():
    modules = _modules()
    # A package's own __init__ is imported with any of its modules; it holds only a docstring
    # (graph_models/__init__ also the version), so it is no edge of the graph.
    return {dotted: {t for t in _imports(path, dotted, modules)
                     if t not in ('graph_models', 'freeze') and not dotted.startswith(t + '.')}
            for dotted, path in modules.items()}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_circle():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_circle():
    """The check itself can fail: the issue's circle, evaluate -> export -> labels -> evaluate."""
    graph = {'a.evaluate': {'a.export'}, 'a.export': {'a.labels'}, 'a.labels': {'a.evaluate'},
             'a.other': {'a.export'}}
    assert _cycles(graph) == [['a.evaluate', 'a.export', 'a.labels']]


def test_each_wing_imports_only_the_wings_below_it():
    upward = [f'{source} -> {target}' for source, targets in sorted(_graph().items())
              for target in sorted(targets)
              if _wing(source) != _wing(target) and _rank(target) >= _rank(source)]
    assert upward == []


def test_the_toolkits_import_nothing_else_of_graph_models():
    for source, targets in sorted(_graph().items()):
        toolkit = next((t for t in TOOLKITS if source == t or source.startswith(t + '.')), None)
        if toolkit:
            assert {t for t in targets if not t.startswith(toolkit)} == set(), source


def test_the_tflite_reader_is_the_bottom_of_its_wing():
    """``read_tflite`` and the model-file errors import nothing above them."""
    targets = _graph()['graph_models.litert.model_file']
    assert {t for t in targets if _rank(t) >= WING_RANKS['graph_models.nets']} == set()


def test_every_module_belongs_to_a_wing_and_every_wing_says_what_it_holds():
    graph = _graph()
    for dotted in graph:
        _wing(dotted)
    for wing in [*WING_RANKS, 'graph_models.system']:
        path = os.path.join(REPO_ROOT, *wing.split('.'))
        if os.path.isdir(path):
            with open(os.path.join(path, '__init__.py'), encoding='utf-8') as f:
                doc = ast.get_docstring(ast.parse(f.read()))
            assert doc and 'import' in doc, f'{wing}/__init__.py says not what it may import'


# TF 1.x's own module name (tensorflow.examples.tutorials.mnist.input_data), which the TF 1.x
# layer reproduces under the name programs import.
NAMES_FROM_TF1 = {'input_data'}


def test_no_two_modules_differ_only_by_a_prefix_or_suffix():
    """``evaluate`` / ``evaluator`` / ``eval_report`` and the like: a name says what is inside.

    ``commands/`` is exempt: its modules are named after the commands they implement.
    """
    names = {dotted.rpartition('.')[2] for dotted, path in _modules().items()
             if dotted.startswith('graph_models') and not dotted.startswith('graph_models.commands')
             and not path.endswith('__init__.py')}
    names -= {'__main__', '_tf'} | NAMES_FROM_TF1
    clashes = [(a, b) for a in sorted(names) for b in sorted(names)
               if a != b and (b.startswith(a) or b.endswith(a)) and len(a) > 3]
    assert clashes == []


# ---------------------------------------------------------------------------------------------
# The old module paths: one more release with a DeprecationWarning


def test_every_old_path_has_one_forwarder_and_no_real_module_hides_it():
    from graph_models._moved import MOVED
    folder = os.path.join(REPO_ROOT, 'graph_models', '_moved')
    files = {f'graph_models.{name[:-3]}' for name in os.listdir(folder)
             if name.endswith('.py') and name != '__init__.py'}
    assert files == set(MOVED)
    modules = _modules()
    for old, new in MOVED.items():
        assert old not in modules, f'{old} is a real module again: its forwarder is never found'
        assert all(n in modules for n in new), new


# The public paths the README of release 0.1 and users' scripts import.
OLD_PUBLIC = [
    ('graph_models.train', 'train_and_eval', 'graph_models.training.train'),
    ('graph_models.run_export', 'export_checkpoint', 'graph_models.export'),
    ('graph_models.nets_factory', 'ModelConfig', 'graph_models.nets.factory'),
    ('graph_models.graphs', 'build_inference_graph', 'graph_models.nets.graphs'),
    ('graph_models.run_config', 'RunConfig', 'graph_models.training.run_config'),
    ('graph_models.evaluate', 'evaluate_model', 'graph_models.litert.evaluate'),
    ('graph_models.evaluate', 'read_tflite', 'graph_models.litert.model_file'),
    ('graph_models.inspect_tflite', 'edgetpu_blockers', 'graph_models.litert.model_file'),
    ('graph_models.labels', 'embed_in_export', 'graph_models.export'),
    ('graph_models.compare', 'compare', 'graph_models.research.compare'),
    ('graph_models.keras_reference', 'build_keras_model', 'graph_models.nets.keras_twins'),
    ('graph_models.summary', 'format_run', 'graph_models.training.run_config'),
]


def test_the_old_paths_still_import_with_a_deprecation_warning():
    """In a fresh interpreter: each old path warns once, naming the new path and pointing at
    the importing line; the old name is the new object."""
    import subprocess
    import sys
    code = ['import importlib, warnings', 'warnings.simplefilter("always")']
    for old, name, new in OLD_PUBLIC:
        code += [f'with warnings.catch_warnings(record=True) as caught:',
                 f'    warnings.simplefilter("always")',
                 f'    from {old} import {name} as old_object',
                 f'line = {len(code) + 3}',  # The import's own line number (1-based).
                 f'ours = [w for w in caught if w.category is DeprecationWarning',
                 f'        and "{old} moved to" in str(w.message)]',
                 f'assert len(ours) == 1, ("{old}", [str(w.message) for w in caught])',
                 f'assert "{new}" in str(ours[0].message), ours[0].message',
                 f'assert (ours[0].filename, ours[0].lineno) == ("<string>", line), ours[0]',
                 f'assert old_object is getattr(importlib.import_module("{new}"), "{name}")',
                 f'import sys; del sys.modules["{old}"]']  # The next import warns again.
    code.append('print("ok")')
    done = subprocess.run([sys.executable, '-c', '\n'.join(code)], capture_output=True,
                          text=True, cwd=REPO_ROOT,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    assert done.stdout.strip() == 'ok', done.stderr[-2000:]


def test_the_new_paths_raise_no_deprecation_warning():
    """Nothing of ours imports an old path: importing every module warns about none."""
    import subprocess
    import sys
    names = sorted(n for n in _modules() if not n.endswith('__main__')
                   and not n.startswith('graph_models.tf1'))  # tf1 switches the process.
    code = ('import importlib, warnings\n'
            'warnings.filterwarnings("error", message=r".* moved to graph_models",'
            ' category=DeprecationWarning)\n'
            f'for name in {names!r}:\n'
            '    importlib.import_module(name)\n'
            'print("ok")\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    assert done.stdout.strip() == 'ok', done.stderr[-2000:]


def test_the_quantize_toolkit_names_our_input_as_our_graphs_do():
    """quantize stands alone, so it spells the input placeholder's name itself."""
    from graph_models.nets.graphs import INPUT
    from graph_models.quantize import INPUT as QUANTIZE_INPUT
    assert QUANTIZE_INPUT == INPUT == 'Input'


def test_a_quantize_error_is_a_one_line_user_error_once_quantize_is_loaded():
    """Its own error types (ValueErrors, as TF 1.15's) are user errors of the command line."""
    from graph_models.cli import _error_line
    from graph_models.errors import user_errors
    from graph_models.quantize import QuantizationConfig, QuantizeConfigError, QuantizeError
    assert QuantizeError in user_errors()
    with pytest.raises(QuantizeConfigError) as e:
        QuantizationConfig(weight_bits=1)
    assert isinstance(e.value, ValueError)
    assert _error_line(e.value) == ('weight bits must be from 2 to 16, got 1', 2)
    assert _error_line(QuantizeError('the graph has optimizer ops'))[1] == 1


# The public paths users import, pinned: a move must keep them (or forward them, as above).
PUBLIC = {
    'graph_models.quantize': ['create_training_graph', 'create_eval_graph',
                              'experimental_create_training_graph',
                              'experimental_create_eval_graph', 'QuantizationConfig',
                              'QuantizeError'],
    'freeze': ['freeze_session', 'load_source', 'export_graph'],
    'graph_models.training.train': ['train_and_eval'],
    'graph_models.training.run_config': ['RunConfig', 'read_run_config'],
    'graph_models.nets.factory': ['ModelConfig', 'get_network_fn', 'MODELS'],
    'graph_models.nets.graphs': ['build_training_graph', 'build_inference_graph'],
    'graph_models.export': ['export_checkpoint', 'export_model', 'freeze_model', 'load_model'],
    'graph_models.litert.evaluate': ['evaluate_model', 'LiteModel'],
    'graph_models.litert.model_file': ['read_tflite', 'ModelFileError', 'edgetpu_blockers'],
    'graph_models.research.compare': ['compare'],
    'graph_models.data': ['load_dataset'],
}


@pytest.mark.parametrize('module', sorted(PUBLIC))
def test_the_public_paths_hold_their_names(module):
    import importlib
    loaded = importlib.import_module(module)
    assert [name for name in PUBLIC[module] if not hasattr(loaded, name)] == []
