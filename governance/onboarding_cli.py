"""Commands for onboarding a shop by declaration: `import --mapping`, `onboard`, `suggest`.

`add_commands(subparsers)` registers them on the `governance` command's subparsers; `import` takes
both forms:

    governance import KIND PATH                 # a built-in importer (Python)
    governance import --mapping shop.toml PATH  # any export, declared by a mapping file
    governance onboard FILE [--shop NAME] [--out shop.toml]
    governance suggest [--shop NAME] [--out expectations/<shop>/suggested]
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def _cmd_import(args: argparse.Namespace, builtin=None) -> int:
    if args.mapping:
        from governance.mappings import land

        paths = [p for p in (args.kind, args.path) if p is not None]
        if len(paths) != 1:
            print("governance import --mapping M PATH: give exactly one export path", file=sys.stderr)
            return 2
        report = land(args.mapping, Path(paths[0]), args.settings.landing_root, as_of=args.as_of)
        print(report.summary())
        return 0
    if args.kind is None or args.path is None:
        print("governance import: give KIND PATH, or --mapping M PATH", file=sys.stderr)
        return 2
    from governance.importers import IMPORTERS, import_export

    if args.kind not in IMPORTERS:
        print(f"governance import: unknown importer {args.kind!r}; known: {', '.join(sorted(IMPORTERS))} "
              "(or declare the export with --mapping)", file=sys.stderr)
        return 2
    report = import_export(args.kind, Path(args.path), args.settings.landing_root, as_of=args.as_of)
    print(report.summary())
    return 0


def _cmd_onboard(args: argparse.Namespace) -> int:
    from governance.mappings.onboard import draft_mapping

    text = draft_mapping(args.file, shop=args.shop)
    if args.out == "-":
        print(text, end="")
        return 0
    out = Path(args.out) if args.out else Path(f"{args.shop or Path(args.file).stem}.toml")
    if out.exists() and not args.force:
        print(f"governance onboard: {out} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    out.write_text(text, encoding="utf-8")
    print(f"draft mapping written to {out}: check every line marked CHECK, then run\n"
          f"  governance import --mapping {out} {args.file}")
    return 0


def _cmd_suggest(args: argparse.Namespace) -> int:
    from governance.quality.suggest import suggest_from_lake

    written = suggest_from_lake(args.settings.data_root, shop=args.shop, out=Path(args.out) if args.out else None,
                                mapping=args.mapping)
    for path in written:
        print(f"proposed suite written: {path}")
    if not written:
        print("no profiled history to suggest from: run the lifecycle on some days first")
        return 1
    print("review the proposals, then accept them by moving the files next to the shop's suites")
    return 0


def add_commands(subparsers) -> None:
    """Register `import` (with --mapping), `onboard` and `suggest` on the `governance` subparsers."""
    from governance.importers import IMPORTERS

    imp = subparsers.add_parser(
        "import", help="land a real shop's export into <data>/landing (a built-in importer or a mapping file)",
        description="governance import KIND PATH, or governance import --mapping shop.toml PATH\n\nImporters:\n"
                    + "\n".join(f"  {k}: {v.description} (path: {v.expects})" for k, v in IMPORTERS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("kind", nargs="?", help="a built-in importer (omit with --mapping)")
    imp.add_argument("path", nargs="?", type=Path, help="the export's file or folder")
    imp.add_argument("--mapping", help="a mapping file (TOML) or a built-in mapping's name")
    imp.add_argument("--as-of", type=date.fromisoformat, default=None,
                     help="landing day for exports without dates (default: today)")
    imp.set_defaults(func=_cmd_import)

    onb = subparsers.add_parser("onboard", help="profile an unknown export and write a draft mapping to check",
                                description="Profile an export of an unknown shop (its columns, formats, encodings, "
                                            "time zones, separators) and write a draft mapping file (TOML) that "
                                            "lands it: check the draft, then `governance import --mapping`.")
    onb.add_argument("file", type=Path, help="the export to profile")
    onb.add_argument("--shop", default=None, help="the shop's name (default: from the file name)")
    onb.add_argument("--out", default=None, help="where to write the draft (default <shop>.toml; - for stdout)")
    onb.add_argument("--force", action="store_true", help="overwrite an existing draft")
    onb.set_defaults(func=_cmd_onboard)

    sug = subparsers.add_parser("suggest", help="propose a shop's blocking suites from its profiled history",
                                description="Propose expectation suites for a shop from the profiles of the data it "
                                            "has landed (ranges, null rates, value sets that held on every day); "
                                            "the proposals are written for a person to accept into expectations/.")
    sug.add_argument("--shop", default="shop", help="the shop the suites are for (names the folder)")
    sug.add_argument("--mapping", default=None, help="the shop's mapping: sources it does not send get no row checks")
    sug.add_argument("--out", default=None, help="folder for the proposals (default expectations/<shop>/suggested)")
    sug.set_defaults(func=_cmd_suggest)
