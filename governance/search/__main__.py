"""``python -m governance.search [--data DIR]``: the full search evaluation, CrowdFlower included.

Fills the CrowdFlower embedding cache on first use (minutes on two CPU cores), then prints the
table that ``search.evaluation`` holds, with the anchors beside it.
"""

import argparse

import polars as pl

from governance.search.evaluate import ANCHORS
from governance.search.stage import evaluate_stage, hybrid_beats_parts
from governance.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=None, help="data root holding the built search index")
    args = ap.parse_args()
    settings = Settings.load(data_root=args.data)
    result = evaluate_stage(settings, crowdflower=True)
    with pl.Config(tbl_rows=30, tbl_cols=20, tbl_width_chars=200):
        print(result.summary.with_columns(pl.col(pl.Float64).round(4)))
    print("hybrid beats both parts on NDCG@10:", hybrid_beats_parts(result.summary))
    for group, values in ANCHORS.items():
        print(f"anchors, {group}: {values}")
    if result.skipped:
        print("skipped:", result.skipped)


if __name__ == "__main__":
    main()
