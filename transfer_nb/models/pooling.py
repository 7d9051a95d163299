"""Pooling: one layer's activations -> a ``(batch, d)`` matrix, inside the hook."""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

__all__ = ["POOLS", "pool_features", "resolve_pools"]

#: pooling rules understood by :func:`pool_features`
POOLS = ("avg", "max", "head2toe", "flatten")


def pool_features(x: torch.Tensor, pool: str = "avg",
                  head2toe_target: int = 8192) -> torch.Tensor:
    """Reduce one layer's activations to a ``(batch, d)`` matrix.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)`` feature maps (channels first; more trailing spatial dims are
        treated alike), ``(B, N, C)`` token sequences (transformers), ``(B, d)``
        vectors (returned as they are) or ``(B,)`` scalars (made ``(B, 1)``).
    pool : {"avg", "max", "head2toe", "flatten"}
        ``"avg"`` / ``"max"``: global average / max over the spatial positions (tokens).
        ``"head2toe"``: the rule of Evci et al. (2022): a map with ``C >= head2toe_target``
        channels is globally averaged; otherwise it is average-pooled to about
        ``head2toe_target / C`` positions -- a square grid of side
        ``round(sqrt(head2toe_target / C))``, capped by the map size, via
        :func:`torch.nn.functional.adaptive_avg_pool2d` (tokens: ``adaptive_avg_pool1d``
        to ``round(head2toe_target / C)`` positions) -- and flattened, so every layer
        contributes about ``head2toe_target`` features.
        ``"flatten"``: everything, unpooled (large!).
    head2toe_target : int
        Target feature count per layer for ``pool="head2toe"``.

    Returns
    -------
    torch.Tensor
        ``(B, d)``.
    """
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; expected one of {POOLS}")
    if x.ndim == 0:
        raise ValueError("a layer produced a scalar; it has no batch dimension")
    if x.ndim == 1:
        return x.reshape(-1, 1)
    if x.ndim == 2 or pool == "flatten":
        return x.reshape(x.shape[0], -1)
    if x.ndim == 3:  # (B, N, C): tokens along dim 1, channels last
        if pool == "avg":
            return x.mean(dim=1)
        if pool == "max":
            return x.amax(dim=1)
        b, n, c = x.shape
        if c >= head2toe_target:
            return x.mean(dim=1)
        positions = max(1, min(n, round(head2toe_target / c)))
        return F.adaptive_avg_pool1d(x.transpose(1, 2), positions).reshape(b, -1)
    spatial = tuple(range(2, x.ndim))  # (B, C, *spatial): channels first
    if pool == "avg":
        return x.mean(dim=spatial)
    if pool == "max":
        return x.amax(dim=spatial)
    b, c = x.shape[:2]
    if c >= head2toe_target or x.ndim != 4:
        return x.mean(dim=spatial)
    side = max(1, round((head2toe_target / c) ** 0.5))
    grid = (min(side, x.shape[2]), min(side, x.shape[3]))
    return F.adaptive_avg_pool2d(x, grid).reshape(b, -1)


def resolve_pools(layers: list[str], pool: Any) -> dict[str, str]:
    if isinstance(pool, str):
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; expected one of {POOLS} "
                             "or a dict layer -> pool")
        return {name: pool for name in layers}
    if isinstance(pool, Mapping):
        extra = [k for k in pool if k not in layers]
        if extra:
            raise ValueError(f"pool names layer(s) {extra} that are not extracted; "
                             f"the requested layers are {layers}")
        bad = {k: v for k, v in pool.items() if v not in POOLS}
        if bad:
            raise ValueError(f"unknown pool(s) {bad}; expected one of {POOLS}")
        # layers the dict does not mention use global average pooling
        return {name: pool.get(name, "avg") for name in layers}
    raise ValueError(f"pool must be one of {POOLS} or a dict layer -> pool; "
                     f"got {type(pool).__name__}")
