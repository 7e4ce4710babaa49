"""The ``governance recommend`` command (registered by ``governance.cli`` through :func:`add_commands`);
its --help text is :data:`DESCRIPTION`."""

from __future__ import annotations

import argparse

DESCRIPTION = """A user's recommendations, explained.

    governance recommend --user USER_KEY [--session SESSION_ID] [-k 10]
    governance recommend --simulate 2          # feedback cycles on a generated shop (train, serve, land a day)

The user is the pseudonymous `user_key` of `integrated.users`. Each recommended item is listed
with the recall model(s) that proposed it, the ranker's features that mattered most for it (SHAP
contributions of the LambdaRank model) and, below, every filter rule with what it removed for this
user. The model is the registry's current `reco_hybrid` (trained, evaluated and promoted by the
`recommendation` assets); nothing is trained here.
"""


def _recommend(a: argparse.Namespace) -> int:
    import polars as pl

    from governance.labelling.registry import ModelRegistry
    from governance.recommendation.data import load
    from governance.recommendation.pipeline import current_bundle
    from governance.recommendation.serve import explain

    settings = a.settings
    registry = ModelRegistry(settings.models_root)
    if a.simulate:
        return _simulate(a, registry)
    if not a.user:
        print("--user is required (a user_key of integrated.users)")
        return 2
    current = current_bundle(registry)
    if current is None:
        print(f"no promoted recommendation model under {settings.models_root}: materialize the recommendation "
              "assets (make demo) first")
        return 1
    bundle, version = current
    data = load(settings.lake())
    if data.users.height and a.user not in set(data.users["user_key"].to_list()) \
            and a.user not in set(data.interactions["user_key"].to_list()):
        print(f"unknown user {a.user!r} (expected a user_key of integrated.users, e.g. "
              f"{data.interactions['user_key'][0]}); a new user gets the popular items")
    items, counts = explain(bundle, data, a.user, session=a.session, k=a.k)
    print(f"reco_hybrid {version} for {a.user}" + (f", session {a.session}" if a.session else ""))
    with pl.Config(tbl_rows=100, tbl_cols=10, fmt_str_lengths=60, tbl_width_chars=220,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        print(items.select("rank", "product_id", "title", "price", pl.col("score").round(3), "sources", "features")
              if items.height else "(no candidates)")
        print("filters applied (removed candidates for this user):")
        print(counts.select("rule", "removed", "description") if counts.height else "(none)")
    return 0


def _simulate(a: argparse.Namespace, registry) -> int:
    import polars as pl

    from governance.recommendation.feedback import FeedbackConfig, run_cycles

    settings = a.settings
    if not (settings.truth_dir / "manifest.json").exists():
        print(f"--simulate needs a generated shop (no {settings.truth_dir / 'manifest.json'})")
        return 1
    rows, _ = run_cycles(settings.lake(), settings.landing_root, settings.truth_dir, registry, cycles=a.simulate,
                         integration_config=settings.integration_config(), config=FeedbackConfig(k=a.k), log=print)
    with pl.Config(tbl_cols=20, tbl_width_chars=220):
        print(rows)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("recommend", help="a user's recommendations, explained (recall sources, ranker features, "
                                         "filters); or --simulate N feedback days",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--user", default=None, help="user_key (integrated.users)")
    p.add_argument("--session", default=None, help="rank for this session as the user's current one")
    p.add_argument("-k", type=int, default=10, help="how many items to recommend (default 10)")
    p.add_argument("--simulate", type=int, default=0, metavar="DAYS",
                   help="run DAYS feedback cycles on the generated shop: train, gate, serve, land the day, ingest")
    p.set_defaults(func=_recommend)
