"""Issue 24 item 5: the Kubernetes TFJob recipe (examples/kubernetes/tfjob.yaml).

The manifest is parsed, and the TF_CONFIG the Kubeflow training operator gives each replica is
resolved with our CLI's own parser and `ClusterConfig.from_sources`, as ``train`` does before
it starts a TF server (no server is started here).
"""

import json
import os

import pytest

from graph_models.cli import build_parser
from graph_models.training.distributed import ClusterConfig
from graph_models.errors import ConfigError

from conftest import REPO_ROOT

yaml = pytest.importorskip('yaml')  # The dev extra installs PyYAML.

MANIFEST = os.path.join(REPO_ROOT, 'examples', 'kubernetes', 'tfjob.yaml')


def _documents():
    with open(MANIFEST) as f:
        return {doc['kind']: doc for doc in yaml.safe_load_all(f)}


def _operator_tf_config(job, specs, port, task_type, index):
    """The TF_CONFIG the training operator sets: a headless service per replica,
    ``<job>-<type>-<index>.<namespace>.svc:<port>``, replica types in lower case."""
    cluster = {kind.lower(): [f'{job}-{kind.lower()}-{i}.default.svc:{port}'
                              for i in range(spec['replicas'])]
               for kind, spec in specs.items()}
    return json.dumps({'cluster': cluster, 'task': {'type': task_type, 'index': index},
                       'environment': 'cloud'})


def test_tfjob_manifest_starts_the_right_task_on_every_replica():
    docs = _documents()
    job = docs['TFJob']
    assert job['apiVersion'] == 'kubeflow.org/v1'
    specs = job['spec']['tfReplicaSpecs']
    assert set(specs) == {'PS', 'Chief', 'Worker'}
    assert specs['Chief']['replicas'] == 1
    claim = docs['PersistentVolumeClaim']
    assert claim['spec']['accessModes'] == ['ReadWriteMany']  # Every pod mounts it.
    name = job['metadata']['name']
    seen = []
    for kind, spec in specs.items():
        assert spec['restartPolicy'] == 'OnFailure'  # A lost task's pod starts again.
        pod = spec['template']['spec']
        (container,) = pod['containers']
        assert container['name'] == 'tensorflow'  # The operator's training container.
        (port,) = [p['containerPort'] for p in container['ports'] if p['name'] == 'tfjob-port']
        mounts = {m['name']: m['mountPath'] for m in container['volumeMounts']}
        volumes = {v['name']: v['persistentVolumeClaim']['claimName'] for v in pod['volumes']}
        command = container['command']
        assert command[:2] == ['graph-models', 'train']
        args = build_parser().parse_args(command[1:])
        # The same command on every replica: the role comes from TF_CONFIG alone.
        assert args.cluster_spec is None and args.job_name is None
        # A restarted chief continues its checkpoint; nothing starts the run again.
        assert args.resume and not args.overwrite
        for folder in (args.checkpoint_dir, args.log_dir, args.data_dir):
            mount = next(m for m in mounts.values() if folder.startswith(m + '/'))
            shared = [n for n, path in mounts.items() if path == mount]
            assert volumes[shared[0]] == claim['metadata']['name'], folder
        for index in range(spec['replicas']):
            env = {'TF_CONFIG': _operator_tf_config(name, specs, port, kind.lower(), index)}
            cluster = ClusterConfig.from_sources(args.cluster_spec, args.job_name,
                                                 args.task_index, env)
            own = f'{name}-{kind.lower()}-{index}.default.svc:{port}'
            # Its server listens on its own pod's address.
            assert cluster.cluster[cluster.job_name][cluster.task_index] == own
            assert cluster.num_workers == 3 and cluster.num_ps == 1
            seen.append((kind, index, cluster.name, cluster.is_chief))
    assert sorted(seen) == [('Chief', 0, 'worker0', True), ('PS', 0, 'ps0', False),
                            ('Worker', 0, 'worker1', False), ('Worker', 1, 'worker2', False)]


def test_several_hosts_one_process_per_task():
    """The recipe for plain machines (docs/distributed.md): the same TF_CONFIG cluster on each
    host, with its own task; a chief job is accepted too."""
    cluster = {'ps': ['10.0.0.1:2222'], 'worker': ['10.0.0.2:2222', '10.0.0.3:2222']}
    names = [ClusterConfig.from_sources(None, None, None, {'TF_CONFIG': json.dumps(
        {'cluster': cluster, 'task': {'type': job, 'index': i}})}).name
        for job, i in (('ps', 0), ('worker', 0), ('worker', 1))]
    assert names == ['ps0', 'worker0', 'worker1']
    with_chief = {'chief': ['10.0.0.2:2222'], 'ps': ['10.0.0.1:2222'],
                  'worker': ['10.0.0.3:2222']}
    config = ClusterConfig.from_sources(None, None, None, {'TF_CONFIG': json.dumps(
        {'cluster': with_chief, 'task': {'type': 'worker', 'index': 0}})})
    assert config.name == 'worker1' and config.cluster['worker'] == ['10.0.0.2:2222',
                                                                     '10.0.0.3:2222']
    with pytest.raises(ConfigError, match='exactly one task'):
        ClusterConfig.from_sources(None, None, None, {'TF_CONFIG': json.dumps(
            {'cluster': dict(with_chief, chief=['a:1', 'b:1']),
             'task': {'type': 'chief', 'index': 0}})})


def test_documented_host_commands_start_the_right_tasks():
    """docs/distributed.md's table of per-host commands (three machines: not run by the snippet
    test): each command's TF_CONFIG, expanded by bash as on its host, starts the task the table
    says on that host's address, and every host runs the same flags."""
    import re
    import shlex
    import subprocess
    with open(os.path.join(REPO_ROOT, 'docs', 'distributed.md'), encoding='utf-8') as f:
        page = f.read()
    cluster = re.search(r"`CLUSTER='(\{.*?\})'`", page).group(1)
    rows = re.findall(r'^\| (10\.0\.0\.\d+) \| `(TF_CONFIG=".*?") (graph-models train .*?)` \|$',
                      page, re.M)
    assert [host for host, _, _ in rows] == ['10.0.0.1', '10.0.0.2', '10.0.0.3']
    assert len({command for _, _, command in rows}) == 1
    names = []
    for host, assignment, command in rows:
        tf_config = subprocess.run(
            ['bash', '-c', f'CLUSTER={shlex.quote(cluster)}; {assignment}; printf %s "$TF_CONFIG"'],
            capture_output=True, text=True, check=True, timeout=30).stdout
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.resume and args.checkpoint_dir == '/shared/checkpoints'
        config = ClusterConfig.from_sources(args.cluster_spec, args.job_name, args.task_index,
                                            {'TF_CONFIG': tf_config})
        assert config.cluster[config.job_name][config.task_index] == host + ':2222'
        names.append(config.name)
    assert names == ['ps0', 'worker0', 'worker1']
