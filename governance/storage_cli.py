"""``governance catalog …``: the DuckDB catalog is derived state, so it can always be made again.

``governance catalog rebuild`` re-creates every view from the lake alone (a deleted, stale or
broken ``warehouse.duckdb`` heals); ``governance catalog check`` lists what the next materialization
would re-create, reads every view once, and verifies every committed partition against its
manifest (row counts and SHA-256 of each part).
"""

from __future__ import annotations

import argparse
import sys

from governance.settings import Settings


def _catalog(args: argparse.Namespace):
    settings: Settings = args.settings
    return settings.catalog()


def _cmd_rebuild(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    done = catalog.rebuild()
    print(f"catalog {catalog.path}: {done['views']} view(s) re-created from the lake {catalog.lake.root}"
          + (f", {done['dropped']} dropped (no committed data)" if done["dropped"] else "")
          + (f"; {done['adopted']} partition(s) written before partition commits adopted" if done["adopted"] else ""))
    return 0


def check(catalog) -> list[str]:
    """Problems of the catalog and the lake: missing/stale views, unreadable views, partitions that do not
    match their manifest. Empty when all is well."""
    problems = []
    create, drop = catalog._plan(catalog.views())
    problems += [f"view {layer}.{table} is missing or stale" for layer, table in create]
    problems += [f"view {layer}.{table} has no committed data" for layer, table in drop]
    catalog.lake.recover()
    problems += catalog.lake.views.differences()
    for layer, table in catalog.lake.tables():
        if (layer, table) not in create:
            try:
                catalog.query(f'SELECT count(*) FROM "{layer}"."{table}"')
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                problems.append(f"view {layer}.{table} does not read: {str(exc).splitlines()[0]}")
        base = catalog.lake.table_dir(layer, table)
        for folder in sorted(base.iterdir()):
            if folder.is_dir() and (folder / "current").exists():
                partition = None if folder.name == "all" else folder.name.removeprefix("date=")
                problems += catalog.lake.verify(layer, table, partition)
    return problems


def _cmd_check(args: argparse.Namespace) -> int:
    problems = check(_catalog(args))
    for p in problems:
        print(p)
    print("catalog and lake: ok" if not problems else f"{len(problems)} problem(s); `governance catalog rebuild` "
          "re-creates the views", file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def add_commands(sub) -> None:
    """Add ``catalog rebuild`` and ``catalog check`` to the ``governance`` command's subparsers."""
    catalog = sub.add_parser("catalog", help="the DuckDB catalog of views: rebuild it from the lake, or check it",
                             description=__doc__.replace("``", "`"),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    what = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION",
                                  help="rebuild or check")
    what.add_parser("rebuild", help="re-create every view from the lake (a deleted or broken catalog heals)"
                    ).set_defaults(func=_cmd_rebuild)
    what.add_parser("check", help="list missing, stale or unreadable views and partitions that do not match "
                                  "their manifest").set_defaults(func=_cmd_check)
