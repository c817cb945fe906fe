"""Hyperparameter search: Optuna sweeps whose trials are tracked fine-tuning runs."""
