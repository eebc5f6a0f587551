"""Balloon / aircraft / unknown classification, with the reasons a person can check."""

from stratowatch.classify.rules import ClassifierConfig, classify_features, classify_table

__all__ = ["ClassifierConfig", "classify_features", "classify_table"]
