"""The `governance` command: generate a shop, import real exports, inspect rules, quarantine and the
catalog, and use the labellers outside the lifecycle.

Every command reads the same settings as Dagster (governance/settings.py: --data or
GOVERNANCE_DATA_ROOT, then the project's data folder), so it sees the warehouse the lifecycle writes,
from whichever directory it is run. `governance COMMAND --help` explains each command and its options.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from governance.contracts import CONTRACTS
from governance.settings import Settings, SettingsError

SOURCES = list(CONTRACTS)


class CommandError(Exception):
    """A problem the user can fix, said in one line."""


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line that points at ``--help`` (not the whole usage block);
    the sub-commands' parsers are of this class too (``add_subparsers`` uses the parent's class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _cmd_settings(args: argparse.Namespace) -> int:
    for name, value in args.settings.describe().items():
        print(f"{name:<18} {value}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from governance.shop import ShopConfig, fault_rates_observed, generate_shop, land_shop

    config = ShopConfig(n_events=args.events, days=args.days, seed=args.seed,
                        end_date=args.end or (datetime.now(UTC) - timedelta(days=1)).date())
    shop = generate_shop(config)
    summary = land_shop(shop, args.settings.landing_root, args.settings.truth_dir)
    print(f"landed into {args.settings.landing_root}: {summary}")
    if args.verbose:
        print(fault_rates_observed(shop))
    return 0


def _cmd_rules(args: argparse.Namespace) -> int:
    from governance.cleaning.rules import RULES

    for source in [args.source] if args.source else list(RULES):
        print(f"\n{source}")
        for i, rule in enumerate(RULES[source], 1):
            print(f"  {i:2}. {rule.name:<26} {rule.action:<10} {rule.description}")
    return 0


def _catalog(settings: Settings):
    catalog = settings.catalog()
    if not catalog.path.exists():
        raise CommandError(f"no catalog at {catalog.path}: materialize the lifecycle first (make demo), or point "
                           "--data / GOVERNANCE_DATA_ROOT at the data folder that holds warehouse.duckdb")
    return catalog


def _query(settings: Settings, sql: str):
    import duckdb

    try:
        return _catalog(settings).query(sql)
    except duckdb.CatalogException as exc:
        raise CommandError(f"{str(exc).splitlines()[0]} — has that stage been materialized?") from None
    except duckdb.Error as exc:
        raise CommandError(str(exc).splitlines()[0]) from None


def _cmd_why(args: argparse.Namespace) -> int:
    """Answer "why is this row not in the clean table?" from the quarantine and audit tables."""
    import polars as pl

    key = args.key.replace("'", "''")
    found = _query(args.settings, f"SELECT stage, rule, reason, file, row_number, partition "
                                  f"FROM quarantine.{args.source} WHERE key = '{key}' ORDER BY stage, file, row_number")
    fixed = _query(args.settings, f"SELECT stage, rule, \"column\", original, fixed FROM audit.{args.source} "
                                  f"WHERE key = '{key}'")
    if found.is_empty() and fixed.is_empty():
        print(f"{args.source} {args.key}: nothing quarantined or fixed under this key")
        return 1
    with pl.Config(tbl_rows=50, fmt_str_lengths=120, tbl_width_chars=200):
        if not found.is_empty():
            print(f"quarantined ({found.height}):\n{found}")
        if not fixed.is_empty():
            print(f"fixed values ({fixed.height}):\n{fixed}")
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    """A read-only query against the catalog, printed as a table (or CSV)."""
    import polars as pl

    frame = _query(args.settings, args.query)
    if args.csv:
        sys.stdout.write(frame.write_csv())
        return 0
    with pl.Config(tbl_rows=args.limit, fmt_str_lengths=80, tbl_width_chars=200):
        print(frame.head(args.limit))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="governance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None,
                        help="data folder: landing zone, lake, catalog, models (default: GOVERNANCE_DATA_ROOT, "
                             "else the project's data/ folder)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("settings", help="show every setting in effect and where it comes from (secrets masked)",
                   description="Show every setting in effect (governance/settings.py lists each one's environment "
                               "variable and default); secrets are masked.").set_defaults(func=_cmd_settings)

    gen = sub.add_parser("generate", help="generate a seeded, messy shop into <data>/landing (truth in <data>/truth)",
                         description="Generate a seeded, messy shop: files in <data>/landing, the injected faults' "
                                     "ground truth in <data>/truth.")
    gen.add_argument("--events", type=int, default=300_000, help="scale: number of events (default %(default)s)")
    gen.add_argument("--days", type=int, default=14, help="days of behaviour (default %(default)s)")
    gen.add_argument("--seed", type=int, default=7, help="random seed (default %(default)s)")
    gen.add_argument("--end", type=date.fromisoformat, default=None, help="last day generated (default: yesterday)")
    gen.add_argument("-v", "--verbose", action="store_true", help="print the injected fault rates")
    gen.set_defaults(func=_cmd_generate)

    rules = sub.add_parser("rules", help="list the cleaning rules of a source, in order",
                           description="The cleaning rules of a source (all sources without one), in the order "
                                       "they run; a row leaves through the first quarantine rule that matches.")
    rules.add_argument("source", nargs="?", choices=SOURCES, help="one source (default: all)")
    rules.set_defaults(func=_cmd_rules)

    why = sub.add_parser("why", help="why is this row not in the clean table? (quarantine + audit by key)",
                         description="Every quarantine and audit row of a business key, across stages.")
    why.add_argument("source", choices=SOURCES, help="the source table")
    why.add_argument("key", help="the row's business key, e.g. an event_id")
    why.set_defaults(func=_cmd_why)

    sql = sub.add_parser("sql", help="run a read-only SQL query against the catalog (DuckDB)",
                         description="Run a read-only SQL query against the DuckDB catalog (schemas raw, quarantine, "
                                     "audit, clean, labelled, integrated), e.g. governance sql \"select rule, "
                                     "count(*) from quarantine.events group by 1 order by 2 desc\".")
    sql.add_argument("query", help="the SQL text")
    sql.add_argument("--limit", type=int, default=50, help="rows printed (default %(default)s)")
    sql.add_argument("--csv", action="store_true", help="print every row as CSV instead of a table")
    sql.set_defaults(func=_cmd_sql)

    from governance import onboarding_cli, storage_cli
    from governance.labelling import cli as labelling_cli
    from governance.recommendation import cli as recommendation_cli
    from governance.search import cli as search_cli

    for commands in (onboarding_cli, storage_cli, labelling_cli, recommendation_cli, search_cli):
        commands.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.data is not None and args.data.exists() and not args.data.is_dir():
            raise CommandError(f"--data {args.data} is a file: give the data folder (landing zone, lake, catalog, "
                               "models), or leave it out for GOVERNANCE_DATA_ROOT / the project's data/")
        args.settings = Settings.load(data_root=args.data)
        return args.func(args)
    except (CommandError, SettingsError, OSError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        if isinstance(exc, OSError) and exc.strerror and exc.filename:  # e.g. a directory given as the output
            message = f"{exc.filename}: {exc.strerror}"
        print(f"governance {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
