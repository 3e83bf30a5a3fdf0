"""``python -m bench weights``: list and fetch the published weights of the deep peers.

``weights list`` shows every file with its cache state and URL; ``weights fetch NAME [NAME ...]`` (a method
name, or ``all``) downloads each file of that method from the authors' repository into the per-user cache
(``$FUSION_CACHE``, default ``~/.cache/fusionbench``) and checks its SHA-256; ``--mirror URL`` takes the files
from ``URL/<method>/<file>`` instead. The work is ``methods.pretrained``'s; this is the command line.
"""
from __future__ import annotations


def cmd_weights(args) -> int:
    from methods import pretrained

    if args.action == "list":
        print(f"cache: {pretrained.cache_dir()} (${pretrained.CACHE_ENV})")
        for entry in pretrained.PUBLISHED_WEIGHTS.values():
            state = "cached " if pretrained.missing_weights(entry) is None else "missing"
            print(f"  {entry.method:<10} {entry.file:<22} {state}  {entry.url}")
        return 0
    names = args.names or []
    if not names:
        from common.errors import UserError
        raise UserError("weights fetch: name a method (ifcnn, densefuse, matr, gesenet) or 'all'")
    if "all" in names:
        names = list(dict.fromkeys(w.method for w in pretrained.PUBLISHED_WEIGHTS.values()))
    entries = [entry for name in names for entry in pretrained.weights_for(name)]   # unknown names fail first
    for entry in entries:
        path = pretrained.fetch(entry, mirror=args.mirror, force=args.force)
        print(f"{entry.method}: {path} (SHA-256 ok)")
    return 0


def add_weights_command(sub) -> None:
    """Register the ``weights`` subcommand on the CLI's subparsers."""
    weights = sub.add_parser("weights", help="list or fetch the published weights of the deep peers")
    weights.add_argument("action", choices=["list", "fetch"])
    weights.add_argument("names", nargs="*", metavar="NAME", help="method(s) to fetch, or 'all'")
    weights.add_argument("--mirror", metavar="URL", help="fetch URL/<method>/<file> instead of the authors' URL")
    weights.add_argument("--force", action="store_true", help="download again even when a cached copy exists")
    weights.set_defaults(func=cmd_weights)
