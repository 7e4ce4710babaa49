"""The GX expectation suites, one ``<layer>.<table>.json`` per governed table, shipped as package data.

Read them through ``governance.quality.runner.suites_dir()`` (``importlib.resources``), never by a path
into a source checkout.
"""
