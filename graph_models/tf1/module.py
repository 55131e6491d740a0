"""The ``tensorflow`` and ``keras`` a TF 1.x program imports: proxy modules and their finder.

`install` switches the process into TF 1.x mode: Keras 2 (``TF_USE_LEGACY_KERAS=1``) for
``tf.layers`` and ``tf.keras``, ``tf.compat.v1.disable_v2_behavior()`` (graph mode, sessions,
placeholders, reference variables as TF 1.15 made them), then ``sys.modules['tensorflow']`` is a
`ProxyModule` over ``tf.compat.v1`` with ``tf.contrib``, ``tf.examples`` and Keras 2 added, and
``sys.modules['keras']`` one over tf-keras' v1 API. A finder on ``sys.meta_path`` resolves
submodule imports (``import tensorflow.contrib.slim as slim``) through the same proxies; real
packages of TensorFlow (``tensorflow.python.*``, ``tensorflow.core.*``, ...) stay the real ones.

Every attribute a program reads from a proxy is recorded (`graph_models.tf1.report`). A name
with no TF 2.21 equivalent raises `TF1APIError` naming the nearest replacement; it is an
``AttributeError``, so ``hasattr`` keeps working (an import of it raises `TF1ImportError`, an
``ImportError`` with the same message).

Our own modules and the libraries we map to (tf-keras, tf-slim, the freeze toolkit) are imported
before the proxies go in, so their ``import tensorflow as tf`` is the real TensorFlow 2.21.
"""

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import sysconfig
import types
import warnings
from typing import Callable, Dict, Optional, Tuple

from graph_models.tf1 import report

# Real packages inside TensorFlow's folder: imports below them are never proxied.
_REAL_PACKAGES = ('python', 'core', 'compiler', 'lite', 'tools', 'dtensor', 'distribute',
                  'security', 'tsl', '_api', 'include')

_TRUE = ('1', 'true', 'yes')

# Version attributes a program prints (tf.__version__, keras.__version__) and __file__, read
# from the real package behind each proxy tree (`_State.real_tops`).
_VERSION_NAMES = ('__version__', '__git_version__', '__compiler_version__', '__file__')


class TF1APIError(AttributeError):
    """A TF 1.x API that TensorFlow 2.21 no longer has; the message names the replacement.

    Attributes:
      api: the TF 1.x name, e.g. ``tf.contrib.learn``.
      replacement: what to use instead.
    """

    def __init__(self, api: str, replacement: str,
                 problem: str = 'has no equivalent in TensorFlow 2.21 (graph-models run)'):
        super().__init__(f'{api} {problem}: {replacement}')
        self.api = api
        self.replacement = replacement


class TF1ImportError(ImportError):
    """`TF1APIError` of an import (``import tensorflow.contrib.learn``, ``from keras.engine
    import topology``): an ``ImportError``, so ``try: import ... except ImportError:`` fallbacks
    run as they did when the module was missing; the message names the replacement.

    Attributes:
      api: the TF 1.x name; replacement: what to use instead.
    """

    def __init__(self, error: TF1APIError, module_name: str):
        super().__init__(str(error), name=module_name)
        self.api = error.api
        self.replacement = error.replacement


class Override:
    """An attribute a proxy provides instead of (or in addition to) its target's.

    Args:
      factory: returns the value; called on first access.
      mapped_to: how the report names the target (e.g. ``graph_models.quantize``).
    """

    def __init__(self, factory: Callable[[], object], mapped_to: str):
        self.factory = factory
        self.mapped_to = mapped_to


# Code whose reads of the proxies are not the program's: ours, the libraries we map to and the
# import system (tf-keras' own `import tensorflow.compat.v2 as tf` goes through `tf.compat`).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NOT_THE_PROGRAM = (
    _PACKAGE_DIR + os.sep, os.path.join(os.path.dirname(_PACKAGE_DIR), 'freeze') + os.sep,
    *(sysconfig.get_paths()[k] + os.sep for k in ('purelib', 'platlib')), '<frozen ')


def _record(public: str, mapped_to: str) -> None:
    """Records a read of ``public`` unless the reader (the caller of ``__getattr__``) is ours or
    a library's."""
    reader = sys._getframe(2).f_code.co_filename  # pylint: disable=protected-access
    if not reader.startswith(_NOT_THE_PROGRAM):
        report.record(public, mapped_to)


def display_name(import_name: str) -> str:
    """``tensorflow.contrib.slim`` -> ``tf.contrib.slim`` (the name a program writes)."""
    if import_name == 'tensorflow' or import_name.startswith('tensorflow.'):
        return 'tf' + import_name[len('tensorflow'):]
    return import_name


class ProxyModule(types.ModuleType):
    """A module that forwards to a target (a real module) with overrides and missing names.

    Module-valued attributes are themselves wrapped, so ``tf.nn.relu`` is recorded as such.

    Args:
      name: the import name (``tensorflow.contrib.layers``).
      target: the real module forwarded to, or None for a pure namespace.
      mapped_to: how the report names the target.
      overrides: attribute -> `Override`.
      missing: attribute -> the replacement to name in `TF1APIError`.
      fallback: the replacement named for any other unknown attribute.
      unwrapped: attributes returned as they are (no proxy, not recorded).
    """

    def __init__(self, name: str, target, mapped_to: str, *,
                 overrides: Optional[Dict[str, Override]] = None,
                 missing: Optional[Dict[str, str]] = None, fallback: Optional[str] = None,
                 unwrapped: Tuple[str, ...] = ()):
        super().__init__(name, getattr(target, '__doc__', None))
        self.__dict__['_tf1'] = {'target': target, 'mapped_to': mapped_to,
                                 'overrides': dict(overrides or {}),
                                 'missing': dict(missing or {}), 'fallback': fallback,
                                 'unwrapped': unwrapped, 'cache': {}}
        # A package, so that submodules import (our finder resolves them); the tensorflow
        # proxy keeps TensorFlow's folder for its real subpackages.
        self.__dict__['__path__'] = list(getattr(target, '__path__', None) or []) \
            if name == 'tensorflow' else []

    def __setattr__(self, attr: str, value):
        if attr.startswith('_'):
            if attr == '__spec__' and '__spec__' in self.__dict__ and self.__spec__ is not None:
                return  # Imported again under an alias (tensorflow.compat.v1): keep the first.
            self.__dict__[attr] = value
            return
        # Not into __dict__: the import system binds submodules here, and later reads must
        # still reach __getattr__ to be recorded. A program's own assignment wins.
        cache = self._tf1['cache']
        if attr in cache and cache[attr][0] is value:
            return
        if isinstance(value, types.ModuleType):  # A real subpackage the import system bound.
            cache[attr] = (value, value.__name__)
            return
        cache[attr] = (value, 'set by the program')

    def __repr__(self):
        return f'<graph_models.tf1 proxy {self.__name__!r} -> {self._tf1["mapped_to"]}>'

    def __dir__(self):
        state = self._tf1
        names = set(state['overrides'])
        if state['target'] is not None:
            names |= {n for n in dir(state['target']) if not n.startswith('_')}
        return sorted(names)

    def __getattr__(self, attr: str):
        state = self.__dict__['_tf1']
        public = f'{display_name(self.__name__)}.{attr}'
        target = state['target']
        if attr.startswith('_') and attr in state['overrides']:
            return state['overrides'][attr].factory()  # e.g. Keras 2's _get_available_gpus.
        if attr.startswith('_'):
            # Python's and libraries' probes (__path__, __wrapped__, _tf_api_names): no record.
            if attr in _VERSION_NAMES:
                real_top = _State.real_tops.get(self.__name__.split('.')[0])
                sources = (real_top, target) if '.' not in self.__name__ else (target, real_top)
                for source in sources:
                    if source is not None and hasattr(source, attr):
                        return getattr(source, attr)
            if target is not None and not attr.startswith('__'):
                return getattr(target, attr)
            raise AttributeError(f'module {self.__name__!r} has no attribute {attr!r}')
        cache = state['cache']
        if attr in cache:
            value, mapped_to = cache[attr]
            _record(public, mapped_to)
            return value
        if attr in state['missing']:
            raise TF1APIError(public, state['missing'][attr])
        if attr in state['overrides']:
            override = state['overrides'][attr]
            value, mapped_to = override.factory(), override.mapped_to
        elif target is not None and (hasattr(target, attr) or _import_submodule(target, attr)):
            value, mapped_to = getattr(target, attr), f'{state["mapped_to"]}.{attr}'
        elif self.__name__ == 'tensorflow' and f'tensorflow.{attr}' in sys.modules:
            return sys.modules[f'tensorflow.{attr}']  # tf.python: the real package.
        else:
            raise TF1APIError(public, state['fallback'] or (
                f'{state["mapped_to"]} has no {attr!r}; check the name in TF 1.15\'s API and '
                'its TF 2 equivalent (tf.compat.v1 keeps most of TF 1.x)'))
        if attr in state['unwrapped']:
            return value
        if isinstance(value, types.ModuleType) and not isinstance(value, ProxyModule):
            value = ProxyModule(f'{self.__name__}.{attr}', value, mapped_to)
        cache[attr] = (value, mapped_to)
        _record(public, mapped_to)
        return value


def _import_submodule(package, name: str) -> bool:
    """Imports ``package.name`` when the target is a package with such a submodule (e.g.
    ``tf_slim.nets`` for ``tensorflow.contrib.slim.nets``); whether it now is an attribute."""
    package_name = getattr(package, '__name__', None)
    if not getattr(package, '__path__', None) or not package_name or \
            package_name.split('.')[0] == 'tensorflow':  # TF's API modules are complete.
        return False
    try:
        importlib.import_module(f'{package.__name__}.{name}')
    except ImportError:
        return False
    return hasattr(package, name)


def resolve(root: ProxyModule, dotted: str):
    """Follows ``a.b.c`` from ``root`` (attribute by attribute, each access recorded)."""
    value = root
    for part in dotted.split('.'):
        value = getattr(value, part)
    return value


class _ProxyLoader(importlib.abc.Loader):
    def __init__(self, module):
        self._module = module

    def create_module(self, spec):
        return self._module

    def exec_module(self, module):
        pass


class ProxyFinder(importlib.abc.MetaPathFinder):
    """Resolves ``tensorflow.*`` and ``keras.*`` imports through the proxies.

    Args:
      roots: top-level name (``tensorflow``, ``keras``) -> its proxy.
    """

    def __init__(self, roots: Dict[str, ProxyModule]):
        self.roots = roots

    def find_spec(self, fullname, path=None, target=None):
        top, _, rest = fullname.partition('.')
        if top not in self.roots or not rest:
            return None
        if top == 'tensorflow' and rest.split('.')[0] in _REAL_PACKAGES:
            return None
        try:
            value = resolve(self.roots[top], rest)
        except TF1APIError as e:
            raise TF1ImportError(e, fullname) from None
        except AttributeError:
            return None
        if not isinstance(value, types.ModuleType):
            return None
        return importlib.machinery.ModuleSpec(fullname, _ProxyLoader(value), is_package=True)


class _State:
    """What `install` set up (one per process)."""
    roots: Optional[Dict[str, ProxyModule]] = None
    data_dir: Optional[str] = None
    real_tops: Dict[str, types.ModuleType] = {}


def data_dir() -> Optional[str]:
    """The folder every dataset loader reads instead of the network (``run --data-dir``)."""
    return _State.data_dir


def keras2_enabled() -> bool:
    """Whether ``tf.layers``/``tf.keras`` are Keras 2 (tf-keras) in this process."""
    return os.environ.get('TF_USE_LEGACY_KERAS', '').lower() in _TRUE


def require_keras2(api: str) -> None:
    """Raises `TF1APIError` when ``api`` needs Keras 2 but TensorFlow uses Keras 3."""
    if keras2_enabled():
        return
    setting = os.environ.get('TF_USE_LEGACY_KERAS')
    problem = 'needs Keras 2 (tf-keras)'
    if setting is None:
        raise TF1APIError(api, 'TensorFlow was imported before graph_models.tf1 without '
                               'TF_USE_LEGACY_KERAS=1 (so with Keras 3); import graph_models.tf1 '
                               'before tensorflow, or set TF_USE_LEGACY_KERAS=1 in the '
                               'environment', problem)
    raise TF1APIError(api, f'TF_USE_LEGACY_KERAS is set to {setting!r}; unset it or set it to 1 '
                           'before TensorFlow is imported', problem)
