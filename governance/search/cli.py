"""``governance search "QUERY" [-k N]``: the shop's ranked products with each component's score.

The lead's ``governance/cli.py`` calls :func:`add_commands` with its subparsers; ``args.settings``
(a :class:`governance.settings.Settings`) is set by its ``main`` before the command runs.
"""

from __future__ import annotations

import argparse


def _cmd_search(args: argparse.Namespace) -> int:
    import polars as pl  # noqa: PLC0415

    from governance.search.hybrid import FUSION  # noqa: PLC0415
    from governance.search.index import SearchIndex, index_dir  # noqa: PLC0415

    settings = getattr(args, "settings", None)
    if settings is None:
        from governance.settings import Settings  # noqa: PLC0415

        settings = Settings.load(data_root=getattr(args, "data", None))
    index = SearchIndex.load(index_dir(settings.data_root))
    result = index.search(args.query, args.k, method=args.method)
    shown = result.drop([c for c in ("category_path", "price") if not args.wide and c in result.columns])
    with pl.Config(tbl_rows=args.k, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(shown.with_columns(pl.col(pl.Float64).round(4)))
    print(f"{args.method}; hybrid = {FUSION} (rank null: not in that component's top 100); "
          f"{index.size:,} products, dense search {index.dense.method}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("search", help="search the shop's products (BM25 + MiniLM, fused); shows each score",
                       description="Rank the shop's products for a query with the search index built by the "
                                   "search stage: the hybrid (coverage-weighted z-score fusion) with BM25's and MiniLM's "
                                   "score and rank beside each product.")
    p.add_argument("query", help="what a shopper typed, e.g. 'red running shoes'")
    p.add_argument("-k", type=int, default=10, help="how many products (default 10)")
    p.add_argument("--method", choices=("hybrid", "bm25", "dense"), default="hybrid",
                   help="hybrid (default): both fused; bm25: words only; dense: MiniLM meaning only")
    p.add_argument("--wide", action="store_true", help="show the category path too")
    p.set_defaults(func=_cmd_search)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="governance-search")
    parser.add_argument("--data", default=None)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)
