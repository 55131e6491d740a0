"""``graph-models predict``: classify image files with any model."""

from graph_models.commands.flags import add_source_flags, positive_int, print_line, source_kwargs


def add_parser(subparsers) -> None:
    p = subparsers.add_parser('predict', help='classify digit images with any model',
                              description='Flatten transparency onto white, grayscale, resize '
                                          'to the model input, invert light backgrounds, '
                                          'normalize, and classify. Class names come from the '
                                          'model\'s metadata (labels file) when it has one.')
    p.add_argument('images', metavar='IMAGE_OR_DIR', help='an image file or a folder of them')
    p.add_argument('--model', required=True, metavar='MODEL',
                   help='.tflite, run folder, TF1 checkpoint, SavedModel, or .pb/.pbtxt')
    p.add_argument('--top-k', type=positive_int, default=1, metavar='K',
                   help='print the K most likely classes per image (default 1)')
    p.add_argument('--json', action='store_true',
                   help='print one JSON document (path, label, index, probability) instead '
                        'of text')
    p.add_argument('--grid', metavar='OUT.png',
                   help='also draw the images with their predictions into this PNG '
                        '(default: none)')
    add_source_flags(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.litert.predict import predict_images
    from graph_models.litert.predict import format_predictions
    result = predict_images(args.images, args.model, **source_kwargs(args))
    print(format_predictions(result.paths, result.probabilities, result.class_names,
                             top_k=args.top_k, as_json=args.json))
    if args.grid:
        result.write_grid(args.grid)
        if not args.json:
            print_line(f'grid: {args.grid}')
    return 0
