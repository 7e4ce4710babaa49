"""Cleaning stage: one clean asset per source, `raw.<source>` → `clean.<source>` (+ quarantine, audit),
with the blocking conservation check beside it."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.metadata import contract_descriptions, counts_table, markdown_table, table_schema, top_reasons
from assets.check_results import check_result
from assets.resources import QualityStoreResource, WarehouseResource
from assets.suite_checks import suite_checks
from governance.settings import Settings
from governance.cleaning import REFERENCES, RULES, clean_with_settings
from governance.cleaning.conservation import cleaning_conservation
from governance.tables import markdown_table as markdown_text
from governance.contracts import CONTRACTS, SourceContract

GROUP = "cleaning"
CONSERVATION_CHECK = "rows_conserved"


def _rules_markdown(source: str) -> str:
    rows = [{"#": i, "rule": f"`{r.name}`", "action": r.action, "what it does": r.description}
            for i, r in enumerate(RULES[source], 1)]
    return markdown_text(rows, max_cell=400)


def clean_asset(contract: SourceContract, daily: dg.PartitionsDefinition
                ) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    source = contract.name
    deps = [dg.AssetKey(["clean", ref]) for ref in REFERENCES[source] if ref in CONTRACTS]

    @dg.asset(
        key=["clean", source],
        group_name=GROUP,
        partitions_def=daily if contract.partitioned else None,
        deps=[dg.AssetDep(dg.AssetKey(["raw", source])), *deps],
        kinds={"polars", "parquet", "duckdb"},
        owners=list(contract.owners),
        description=(
            f"{contract.description} Cleaned by the ordered rules in governance/cleaning/rules.py; every removed "
            f"row is in `quarantine.{source}` (stage 'cleaning') with its rule and reason, every fixed value's "
            f"original in `audit.{source}`.\n\n" + _rules_markdown(source)
        ),
        tags={"layer": "clean", "stage": "cleaning"},
    )
    def _clean(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        partition = context.partition_key if contract.partitioned else None
        # on the engine the settings name: Polars here, or Spark (engine=spark, spark_master)
        result = clean_with_settings(warehouse.config, source, partition, run_id=context.run.run_id,
                                     now=datetime.now(UTC))
        catalog = warehouse.catalog
        for layer in ("clean", "quarantine", "audit"):
            catalog.register(layer, source)
        if source == "products":
            catalog.register("clean", "product_id_map")
        skipped = {o.rule: o.skipped for o in result.outcomes if o.skipped}
        for rule, why in skipped.items():
            context.log.warning(f"rule {rule} skipped on {source} {partition or 'snapshot'}: {why}")
        by_rule = {o.rule: o.rows for o in result.outcomes if o.rows and o.skipped is None}
        actions = {o.rule: o.action for o in result.outcomes}
        breakdown = pl.DataFrame(
            {"rule": list(by_rule), "action": [actions[r] for r in by_rule], "rows": list(by_rule.values())},
            schema={"rule": pl.String, "action": pl.String, "rows": pl.Int64},
        )
        context.log.info(f"{source} {partition or 'snapshot'}: {result.rows_in:,} in, {result.clean.height:,} clean, "
                         f"{result.quarantine.height:,} quarantined, {result.audit.height:,} values fixed")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": result.clean.height,
            "rows_in": result.rows_in,
            "rows_clean": result.clean.height,
            "rows_quarantined": result.quarantine.height,
            "values_fixed": result.audit.height,
            "rules_applied": markdown_table(breakdown, rows=len(breakdown)),
            "quarantined_by_rule": counts_table({r: n for r, n in by_rule.items() if actions[r] == "quarantine"}),
            "top_quarantine_reasons": top_reasons(result.quarantine),
            "rules_skipped": counts_table(skipped, "rule", "why skipped"),
            "dagster/column_schema": table_schema(result.clean, contract_descriptions(source)),
            "preview": markdown_table(result.clean, columns=[c for c in result.clean.columns if not c.startswith("_")]),
            "table": f"clean.{source}",
        })

    @dg.asset_check(
        asset=_clean,
        name=CONSERVATION_CHECK,
        blocking=True,
        partitions_def=daily if contract.partitioned else None,
        description="rows in raw = rows in clean + rows quarantined by cleaning, counted from the files on disk. "
                    "Blocking: a violation stops downstream assets.",
    )
    def _conserved(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                   quality_store: QualityStoreResource) -> dg.AssetCheckResult:
        partition = context.partition_key if contract.partitioned else None
        c = cleaning_conservation(warehouse.lake, source, partition)
        figures = {"rows_in": c.rows_in, "rows_clean": c.rows_clean, "rows_quarantined": c.rows_quarantined,
                   "difference": c.difference}
        return check_result(context, quality_store, passed=c.holds, blocking=True, figures=figures,
                            description="rows in raw = rows in clean + rows quarantined" if c.holds
                            else f"{c.difference:+,} rows unaccounted for", metadata=figures)

    return _clean, _conserved


def stage_definitions(daily: dg.PartitionsDefinition, settings: Settings) -> dg.Definitions:
    """One clean asset per source, each with its conservation check and its GX suite beside it."""
    built = [clean_asset(c, daily) for c in CONTRACTS.values()]
    suites = [suite_checks(["clean", c.name], daily if c.partitioned else None, settings) for c in CONTRACTS.values()]
    return dg.Definitions(assets=[a for a, _ in built],
                          asset_checks=[c for _, c in built] + [s for s in suites if s is not None])
