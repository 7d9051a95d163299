"""Feature extraction: one streamed forward pass, pooled inside the hooks.

* :mod:`~transfer_nb.features.extraction` -- :func:`extract_features` (hooks only the
  names that :mod:`transfer_nb.models.layers` resolves).

It builds on :mod:`transfer_nb.models.pooling` (:func:`pool_features`, :data:`POOLS`,
re-exported here; a layer's output reduced to a row per image, which the layer
inventory uses too) and :mod:`transfer_nb.data.batching` (any ``data`` as a stream of
image batches, which the cache's data fingerprint uses too).

The cache key of a result is :func:`transfer_nb.cache.features_cache_key`.
"""
from __future__ import annotations

from transfer_nb.features.extraction import FeatureExtractionError, extract_features
from transfer_nb.models.layers import VIRTUAL_LAYERS, feature_layers, list_layers
from transfer_nb.models.pooling import POOLS, pool_features

# kept for transfer_nb.toy (being dissolved into the library): the declared layers
default_layers = feature_layers

__all__ = ["extract_features", "pool_features", "FeatureExtractionError", "POOLS",
           "VIRTUAL_LAYERS", "list_layers", "feature_layers"]
