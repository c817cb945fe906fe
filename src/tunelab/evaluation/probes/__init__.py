"""Probes beyond the test metrics: bias (counterfactual pairs), hallucination, forgetting."""
