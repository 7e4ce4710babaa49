"""Product search: BM25 (lexical.py), MiniLM exact/HNSW (dense.py), coverage-weighted z-score fusion
(hybrid.py; reciprocal-rank fusion beside it), the saved index (index.py), evaluation on real judgments and shop clicks (evaluate.py), the stage (stage.py)
and the `governance search` command (cli.py)."""
