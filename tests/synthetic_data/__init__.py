"""Generated test data (not part of the library): clean-table-shaped frames and a stand-in clean layer.

``quality_frames`` — clean.* frames with injectable drift, for the quality tests and ``bench/quality.py``;
``integration_lake`` — a whole clean layer written to a lake with known facts, for the integration tests
and ``bench/integrate.py``. Tests import them as ``synthetic_data.…`` (pytest puts ``tests/`` on the path);
the benchmarks, run from the repository, as ``tests.synthetic_data.…``.
"""
