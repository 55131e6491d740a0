"""``graph-models inspect``: describe a ``.tflite`` or a graph source; the Edge TPU check."""

from graph_models.commands.flags import UNSAFE_HELP, print_line, tag_set


def add_parser(subparsers) -> None:
    p = subparsers.add_parser('inspect', help='inputs, outputs, ops of a .tflite; Edge TPU check',
                              description='Describe a .tflite (or a TF graph source); --edgetpu '
                                          'checks a .tflite against the Coral Edge TPU model '
                                          'requirements (exit 1 if not ready).')
    p.add_argument('model', metavar='MODEL', help='.tflite (or a .pb/.pbtxt, .meta, SavedModel)')
    p.add_argument('--edgetpu', action='store_true',
                   help='check the Coral Edge TPU model requirements; exit 1 if not ready')
    p.add_argument('--allow-unsafe-ops', action='store_true', help=UNSAFE_HELP)
    p.add_argument('--tag-set', default='serve', metavar='TAGS', help='SavedModel tags')
    p.add_argument('--signature-def', metavar='KEY', help='SavedModel signature')
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.litert.inspect import inspect_model
    lines, status = inspect_model(args.model, edgetpu=args.edgetpu,
                                  allow_unsafe_ops=args.allow_unsafe_ops,
                                  tag_set=tag_set(args.tag_set), signature_def=args.signature_def)
    for line in lines:
        print_line(line)
    return status
