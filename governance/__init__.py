"""governance: the domain library of the data-governance platform (no Dagster inside)."""

import warnings

__version__ = "0.1.0"

# Great Expectations imports pyspark when it is installed (the `spark` extra); pyspark then warns on every
# import that it does not fully support pandas 3 — nothing here hands pandas frames to Spark (the Spark
# engine moves Arrow batches), so the warning only cluttered every command's and the demo's output.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
