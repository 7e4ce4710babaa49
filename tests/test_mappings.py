"""Onboarding by declaration: mapping files validated with clear errors, a new shop's export landed
with a mapping and no Python, the built-in importers re-expressed as mappings, drafts from `onboard`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from governance.collection import ingest_partition, landed_partitions
from governance.contracts import CONTRACTS
from governance.importers import import_export
from governance.mappings import MappingError, builtin_mappings, land, load_mapping, parse_mapping, sources_not_sent
from governance.mappings.onboard import draft_mapping
from governance.cli import main
from governance.storage import Lake

NOW = datetime(2026, 11, 21, 6, tzinfo=UTC)

SHOP_TOML = """
version = 1
shop = "tienda"
namespace = "tienda"
sends = ["events"]

[read]
format = "csv"
delimiter = ";"
header = true
null_values = ["-"]

[events]
event_id = { hash = ["visita", "articulo", "fecha", "accion", "precio"], id = true }
session_id = { from = "visita", id = true }
user_id = { from = "cliente", id = true }
item_id = { from = "articulo", id = true }
event_type = { from = "accion", values = { vista = "view", carrito = "add_to_cart", compra = "purchase" } }
event_time = { from = "fecha", format = "%d/%m/%Y %H:%M", timezone = "Europe/Madrid" }
price = { from = "precio", decimal = ",", thousands = "." }
currency = { const = "EUR" }
"""
# a Spanish shop's export: cp1252, ';', decimal commas, day-first local times, no event ids, a
# visit column that is no alias of session_id, last year's days
EXPORT = ("visita;cliente;articulo;fecha;accion;precio\n"
          "v1;c1;móvil-1;03/02/2025 10:15;vista;35,79\n"
          "v1;c1;móvil-1;03/02/2025 10:17;compra;1.299,00\n"
          "v2;-;cámara-2;04/02/2025 23:30;vista;-\n"
          "v2;-;cámara-2;04/02/2025 23:31;favorito;12,50\n")


def collect_all(landing: Path, lake: Lake, source: str = "events"):
    results = {}
    for day in landed_partitions(landing, source):
        results[day] = ingest_partition(lake, CONTRACTS[source], landing, day, run_id="t", ingested_at=NOW)
    return results


@pytest.mark.parametrize("name", builtin_mappings())
def test_every_builtin_mapping_is_valid(name):
    mapping = load_mapping(name)
    assert mapping.shop and mapping.outputs
    assert set(mapping.outputs) <= set(mapping.sends)


def test_a_broken_mapping_names_every_problem_with_its_place():
    text = """
shop = "x"
sends = ["events", "clicks"]
[read]
format = "xls"
[events]
event_id = { fromm = "id" }
session = { from = "s" }
item_id = { from = "i" }
event_type = { const = "view" }
event_time = { from = "t", format = "yyyy-mm-dd" }
price = { from = "p", decimal = ";" }
"""
    with pytest.raises(MappingError) as err:
        parse_mapping(text, "shop.toml")
    message = str(err.value)
    assert message.startswith("shop.toml:")
    for expected in ("'clicks' is not a source", "[read].format: 'xls'", "[events].event_id: unknown key 'fromm'",
                     "did you mean 'from'", "no column 'session'", "did you mean 'session_id'",
                     "session_id not mapped", "[events].event_time.format",
                     "[events].price.decimal"):
        assert expected in message, expected
    with pytest.raises(MappingError, match="not valid TOML"):
        parse_mapping("shop = ", "bad.toml")


def test_a_new_shop_lands_with_a_mapping_file_and_no_python(tmp_path):
    (tmp_path / "tienda.toml").write_text(SHOP_TOML, encoding="utf-8")
    export = tmp_path / "export.csv"
    export.write_bytes(EXPORT.encode("cp1252"))
    landing, lake = tmp_path / "landing", Lake.at(tmp_path / "lake")
    report = land(tmp_path / "tienda.toml", export, landing)
    assert report.rows_rejected == {"unmapped_event_type": 1}  # "favorito" has no contract event type
    assert report.total_written == 3 and report.balanced
    # last year's days are partitions of their own: the range follows the data
    assert landed_partitions(landing, "events") == ["2025-02-03", "2025-02-04"]
    results = collect_all(landing, lake)
    raw = pl.concat([lake.read("raw", "events", d) for d in results]).sort("event_time")
    assert sum(r.quarantine.height for r in results.values()) == 0
    assert raw["price"].to_list() == [35.79, 1299.0, None]
    assert raw["item_id"].to_list() == ["tienda:móvil-1", "tienda:móvil-1", "tienda:cámara-2"]
    assert raw["user_id"].to_list() == ["tienda:c1", "tienda:c1", None]
    # 10:15 in Madrid (CET) is 09:15 UTC
    assert raw["event_time"][0] == datetime(2025, 2, 3, 9, 15, tzinfo=UTC)
    assert raw["event_type"].to_list() == ["view", "purchase", "view"]
    ids = raw["event_id"].to_list()
    assert len(set(ids)) == 3 and all(i.startswith("tienda:") and len(i) == 7 + 16 for i in ids)
    # a re-sent row gets the same id: duplicates are still found by the key rules
    export.write_bytes((EXPORT + EXPORT.splitlines()[1] + "\n").encode("cp1252"))
    land(tmp_path / "tienda.toml", export, tmp_path / "again")
    again = pl.read_parquet(tmp_path / "again" / "events" / "2025-02-03" / "tienda__export.parquet")
    assert again["event_id"].to_list() == [ids[0], ids[1], ids[0]]
    assert sources_not_sent(load_mapping(tmp_path / "tienda.toml")) == {"products", "users", "reviews", "queries"}


def test_a_mapping_naming_a_column_the_export_lacks_says_which(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(EXPORT.replace("articulo", "producto"), encoding="utf-8")
    (tmp_path / "m.toml").write_text(SHOP_TOML, encoding="utf-8")
    with pytest.raises(MappingError, match="'articulo'.*The export's columns are visita, cliente, producto"):
        land(tmp_path / "m.toml", export, tmp_path / "landing")


def _raw_events(landing: Path, lake_root: Path) -> pl.DataFrame:
    lake = Lake.at(lake_root)
    collect_all(landing, lake)
    cols = CONTRACTS["events"].column_names
    return pl.concat([lake.read("raw", "events", d) for d in landed_partitions(landing, "events")]).select(cols)


@pytest.mark.parametrize("kind, folder", [("yoochoose", "yoochoose_100k_sessionrec"),
                                          ("taobao", "taobao_userbehavior_tiny")])
def test_builtin_importer_and_its_mapping_land_the_same_events(tmp_path, shared_data, kind, folder):
    import_export(kind, shared_data / folder, tmp_path / "a")
    land(kind, shared_data / folder, tmp_path / "b")
    a = _raw_events(tmp_path / "a", tmp_path / "lake_a").sort("event_id", "event_time")
    b = _raw_events(tmp_path / "b", tmp_path / "lake_b").sort("event_id", "event_time")
    assert a.height == b.height > 0
    assert a.equals(b)


def test_onboard_drafts_a_valid_mapping_that_lands_the_export(tmp_path, shared_data):
    export = shared_data / "diginetica_sample" / "sample_train-item-views.csv"
    text = draft_mapping(export, shop="digi")
    mapping = parse_mapping(text)
    events = mapping.outputs["events"].columns
    assert events["session_id"].source == "session_id" and events["item_id"].source == "item_id"
    assert events["event_id"].kind == "hash" and "NA" in mapping.read.null_values
    assert events["event_time"].format == "%Y-%m-%d"
    (tmp_path / "digi.toml").write_text(text)
    report = land(tmp_path / "digi.toml", export, tmp_path / "landing")
    published = pl.read_csv(export, separator=";", infer_schema=False)
    assert report.total_written == published.height
    raw = _raw_events(tmp_path / "landing", tmp_path / "lake")
    assert raw.height == published.height and raw["user_id"].null_count() == (published["user_id"] == "NA").sum()


def test_cli_import_with_a_mapping_and_onboard(tmp_path, capsys):
    (tmp_path / "tienda.toml").write_text(SHOP_TOML)
    (tmp_path / "export.csv").write_bytes(EXPORT.encode("cp1252"))
    assert main(["--data", str(tmp_path / "data"), "import", "--mapping", str(tmp_path / "tienda.toml"),
                 str(tmp_path / "export.csv")]) == 0
    assert (tmp_path / "data" / "landing" / "events" / "2025-02-03" / "tienda__export.parquet").exists()
    out = tmp_path / "draft.toml"
    assert main(["--data", str(tmp_path), "onboard", str(tmp_path / "export.csv"), "--out", str(out)]) == 0
    draft = parse_mapping(out.read_text())
    assert draft.read.delimiter == ";" and "events" in draft.outputs
    assert "import --mapping" in capsys.readouterr().out
