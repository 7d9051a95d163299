"""TransRate (Huang et al., ICML 2022): re-exported from :mod:`transfer_nb.coding_rate`.

See :func:`transfer_nb.coding_rate.transrate` for the definition, the three
variants (``"snippet"``, the default, ``"layerwise"`` and ``"projected"``; ``"official"``
is a deprecated alias of ``"layerwise"``) and how each is computed.
"""
from transfer_nb.coding_rate import (coding_rate, coding_rate_terms, transrate,
                                     transrate_official, transrate_per_layer)

__all__ = ["transrate", "transrate_official", "coding_rate", "coding_rate_terms",
           "transrate_per_layer"]
