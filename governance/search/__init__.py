"""Product search: BM25 (lexical.py), MiniLM exact/HNSW (dense.py), reciprocal-rank fusion (hybrid.py),
the saved index (index.py), evaluation on real judgments and shop clicks (evaluate.py), the stage (stage.py)
and the `governance search` command (cli.py)."""
