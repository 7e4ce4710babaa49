"""The Dagster layer: assets, checks, resources, sensors and schedules over `governance`."""
