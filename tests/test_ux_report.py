"""The quality report's wording as analysts read it (fast: no store is built)."""

from governance.quality.report import _ago


def test_a_snapshot_age_is_said_in_the_unit_people_use():
    assert _ago(0) == "just now"
    assert _ago(22 / 1440) == "22 minutes ago" and _ago(1 / 1440) == "1 minute ago"
    assert _ago(5 / 24) == "5 hours ago" and _ago(1 / 24) == "1 hour ago"
    assert _ago(3.5) == "3.5 days ago"
    assert "0.0 day" not in _ago(0.0001)


def test_ages_read_as_people_write_them():
    from governance.quality.anomalies import day_count

    assert [day_count(n) for n in (0, 1, 2, 18)] == ["0 days", "1 day", "2 days", "18 days"]
