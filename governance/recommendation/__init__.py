"""Recommendation: recall → filter → rank recommenders trained on the governed (integrated) data.

One module per idea, plain functions and small classes over Polars, NumPy and SciPy sparse:

* ``data``      training frames from ``integrated.*`` and the temporal split (last day(s) held out);
* ``recall/``   popularity, item-item (SAR-style), matrix factorisation (EASE, implicit ALS/BPR),
                session kNN (V-SKNN) and content (MiniLM embeddings from the integration cache);
* ``filters``   business rules as data, each counting what it removed;
* ``rank``      the learned ranker (LightGBM LambdaRank) over the union of candidates;
* ``evaluate``  metrics and the published protocols (shop, MovieLens-100k, YOOCHOOSE, Diginetica);
* ``serve``     batch recommendations, similar items and explanations;
* ``gate``      promotion gated by the input partitions' blocking checks and the metric;
* ``feedback``  days simulated after training: impressions, position-biased clicks, purchases.

No Dagster here; ``assets/recommendation.py`` is the thin layer over it.
"""

SCHEMA = "reco"
