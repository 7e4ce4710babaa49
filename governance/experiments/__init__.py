"""Experiments: off-policy estimators (off_policy.py), online A/B statistics (ab_test.py), the simulated
search experiment (simulate.py), the stage (stage.py) and the "experiments and search" page (report.py)."""
