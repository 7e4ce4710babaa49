"""The `governance` command: generate a shop, import real exports, inspect rules and quarantine,
and use the labellers outside the lifecycle."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DEFAULT_DATA = Path(os.environ.get("GOVERNANCE_DATA_ROOT", "data"))


def _cmd_generate(args: argparse.Namespace) -> int:
    from governance.shop import ShopConfig, fault_rates_observed, generate_shop, land_shop

    config = ShopConfig(n_events=args.events, days=args.days, seed=args.seed,
                        end_date=args.end or (datetime.now(UTC) - timedelta(days=1)).date())
    shop = generate_shop(config)
    summary = land_shop(shop, args.data / "landing", args.data / "truth")
    print(f"landed into {args.data / 'landing'}: {summary}")
    if args.verbose:
        print(fault_rates_observed(shop))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from governance.importers import import_export

    report = import_export(args.kind, args.path, args.data / "landing", as_of=args.as_of)
    print(report.summary())
    return 0


def _cmd_rules(args: argparse.Namespace) -> int:
    from governance.cleaning.rules import RULES

    sources = [args.source] if args.source else list(RULES)
    for source in sources:
        print(f"\n{source}")
        for i, rule in enumerate(RULES[source], 1):
            print(f"  {i:2}. {rule.name:<26} {rule.action:<10} {rule.description}")
    return 0


def _cmd_why(args: argparse.Namespace) -> int:
    """Answer "why is this row not in the clean table?" from the quarantine and audit tables."""
    from governance.storage import Catalog, Lake

    catalog = Catalog.at(args.data / "warehouse.duckdb", Lake.at(args.data / "lake"))
    key = args.key.replace("'", "''")
    found = catalog.query(
        f"SELECT stage, rule, reason, file, row_number, partition FROM quarantine.{args.source} WHERE key = '{key}' "
        "ORDER BY stage, file, row_number")
    fixed = catalog.query(
        f"SELECT stage, rule, \"column\", original, fixed FROM audit.{args.source} WHERE key = '{key}'")
    if found.is_empty() and fixed.is_empty():
        print(f"{args.source} {args.key}: nothing quarantined or fixed under this key")
        return 1
    import polars as pl

    with pl.Config(tbl_rows=50, fmt_str_lengths=120, tbl_width_chars=200):
        if not found.is_empty():
            print(f"quarantined ({found.height}):\n{found}")
        if not fixed.is_empty():
            print(f"fixed values ({fixed.height}):\n{fixed}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="governance", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate a seeded, messy shop into <data>/landing (truth in <data>/truth)")
    gen.add_argument("--events", type=int, default=300_000, help="scale: number of events (default %(default)s)")
    gen.add_argument("--days", type=int, default=14)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--end", type=date.fromisoformat, default=None, help="last day generated (default: yesterday)")
    gen.add_argument("-v", "--verbose", action="store_true", help="print the injected fault rates")
    gen.set_defaults(func=_cmd_generate)

    from governance.importers import IMPORTERS

    imp = sub.add_parser("import", help="land a real shop's export into <data>/landing",
                         description="Importers:\n" + "\n".join(f"  {k}: {v.description} (path: {v.expects})"
                                                                for k, v in IMPORTERS.items()),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("kind", choices=sorted(IMPORTERS))
    imp.add_argument("path", type=Path)
    imp.add_argument("--as-of", type=date.fromisoformat, default=None, help="day for undated exports")
    imp.set_defaults(func=_cmd_import)

    rules = sub.add_parser("rules", help="list the cleaning rules of a source, in order")
    rules.add_argument("source", nargs="?", choices=["events", "products", "users", "reviews", "queries"])
    rules.set_defaults(func=_cmd_rules)

    why = sub.add_parser("why", help="why is this row not in the clean table? (quarantine + audit by key)")
    why.add_argument("source", choices=["events", "products", "users", "reviews", "queries"])
    why.add_argument("key", help="the row's business key, e.g. an event_id")
    why.set_defaults(func=_cmd_why)

    _add_labelling_commands(sub)
    return parser


def _add_labelling_commands(sub) -> None:
    """Labellers usable outside the lifecycle (loaded lazily: torch is slow to import)."""
    try:
        from governance.labelling import cli as labelling_cli
    except ImportError:
        return
    labelling_cli.add_commands(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"governance {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
