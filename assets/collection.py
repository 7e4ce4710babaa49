"""Collection stage: one raw asset per source, landing zone → `raw.<source>` (+ quarantine)."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.metadata import contract_descriptions, counts_table, markdown_table, table_schema, top_reasons
from assets.resources import WarehouseResource
from governance.settings import Settings
from governance.collection import collect_with_settings
from governance.contracts import CONTRACTS, SourceContract

GROUP = "collection"

def raw_asset(contract: SourceContract, daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", contract.name],
        group_name=GROUP,
        partitions_def=daily if contract.partitioned else None,
        kinds={"polars", "parquet", "duckdb"},
        owners=list(contract.owners),
        description=(
            f"{contract.description} Landed files under `landing/{contract.name}/"
            f"{'<day>' if contract.partitioned else '*'}/` read against the `{contract.name}` contract "
            f"(governance/contracts.py); rows that break it go to `quarantine.{contract.name}` with a reason. "
            "Each row carries lineage: source file, file content hash, row number, ingest time."
        ),
        tags={"layer": "raw", "stage": "collection"},
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        partition = context.partition_key if contract.partitioned else None
        result = collect_with_settings(warehouse.config, contract, partition, run_id=context.run.run_id,
                                       ingested_at=datetime.now(UTC))
        catalog = warehouse.catalog
        for layer in ("raw", "quarantine", "audit"):
            catalog.register(layer, contract.name)
        files = result.files
        skipped = [f for f in files if f.status != "ingested"]
        drift = {f.file: {"renamed": f.renamed_columns, "extra": f.extra_columns} for f in files
                 if f.renamed_columns or f.extra_columns}
        context.log.info(
            f"{contract.name} {partition or 'snapshot'}: {result.rows_read:,} rows read from {len(files)} files, "
            f"{result.rows_landed:,} landed, {result.quarantine.height:,} quarantined"
        )
        for f in files:
            if f.extra_columns or f.renamed_columns:
                context.log.warning(f"schema drift in {f.file}: renamed {f.renamed_columns}, extra {f.extra_columns} "
                                    f"(extra values kept in _extra_columns)")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_landed,
                "rows_read": result.rows_read,
                "rows_landed": result.rows_landed,
                "rows_quarantined": result.quarantine.height,
                "quarantined_by_rule": counts_table(result.quarantine_by_rule()),
                "top_quarantine_reasons": top_reasons(result.quarantine),
                "values_normalised": result.audit.height,
                "files_read": len(files) - len(skipped),
                "files_skipped": len(skipped),
                "files": markdown_table(
                    pl.DataFrame([f.as_dict() for f in files]).select(
                        "file", "format", "status", "rows_in_file", "rows_landed", "rows_quarantined", "note"),
                    rows=50) if files else dg.MetadataValue.md("_no files landed_"),
                "schema_drift": counts_table({f: "; ".join(f"{k}: {v}" for k, v in d.items() if v)
                                              for f, d in drift.items()}, "file", "columns renamed / extra"),
                "dagster/column_schema": table_schema(result.raw, contract_descriptions(contract.name)),
                "preview": markdown_table(result.raw, columns=[c for c in result.raw.columns if not c.startswith("_")]),
                "table": f"raw.{contract.name}",
                "path": dg.MetadataValue.path(str(warehouse.lake.table_dir("raw", contract.name))),
            }
        )

    return _raw

def stage_definitions(daily: dg.PartitionsDefinition, settings: Settings) -> dg.Definitions:  # noqa: ARG001
    """One raw asset per source contract."""
    return dg.Definitions(assets=[raw_asset(c, daily) for c in CONTRACTS.values()])
