"""The Dagster layer: assets, checks, resources, sensors and schedules over `governance`."""

import warnings

import dagster as dg

# Partitioned asset checks are a preview feature of Dagster 1.13 that this project relies on
# deliberately (conservation and suites run per partition); the warning would repeat on every load.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
