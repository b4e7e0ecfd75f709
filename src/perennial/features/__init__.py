"""Point-in-time customer features: a registry of documented features and their expressions.

``compute_features(backend, snapshot, as_of)`` is the facade (one row per customer,
only rows before ``as_of``); ``summary_for_btyd`` gives the buy-till-you-die inputs.
Both return Ibis expressions; ``perennial.store.backends`` runs them on DuckDB or Spark.
"""

from perennial.features.btyd import summary_for_btyd
from perennial.features.registry import Feature, FeatureKind
from perennial.features.snapshot import FEATURE_NAMES, FEATURES, compute_features

__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "Feature",
    "FeatureKind",
    "compute_features",
    "summary_for_btyd",
]
