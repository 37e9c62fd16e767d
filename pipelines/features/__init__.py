"""The feature store: feature tables, point-in-time training sets and online features, governed.

See `client.FeatureEngineeringClient`; the point-in-time semantics are in `engine`.
"""

from pipelines.features.client import FeatureEngineeringClient, FeatureTable
from pipelines.features.spec import FeatureFunction, FeatureLookup

__all__ = ["FeatureEngineeringClient", "FeatureFunction", "FeatureLookup", "FeatureTable"]
