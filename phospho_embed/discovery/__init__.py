"""Intent discovery and analytics: find the intents in unlabelled messages.

```python
from phospho_embed import PhosphoClient
from phospho_embed.discovery import discover_intents

with PhosphoClient() as client:
    found = discover_intents(messages, encoder=client)   # or vectors=..., nothing embedded
found.labels          # int array, one per message; -1: in no intent
found.intents         # DiscoveredIntent list, largest first: name, size, share, keywords, examples
found.quality         # silhouette, Calinski-Harabasz, Davies-Bouldin (cosine geometry)
found.evaluate(gold)  # NMI, ARI, ACC (Hungarian matching), coverage
found.assign(new)     # labels of new messages (texts or vectors), -1 when none is close
found.to_classifier() # an IntentClassifier with the intents as examples
found.report("intents.html")   # one self-contained page: map, table, trend, quality
```

Needs the ``analytics`` extra (scikit-learn, scipy, matplotlib):
``pip install "phospho-embed[analytics]"``. ``import phospho_embed.discovery`` itself needs
numpy only; the first function that needs a missing package raises an ImportError naming
the extra.
"""

from phospho_embed.discovery._cluster import Selection
from phospho_embed.discovery._deps import INSTALL_HINT
from phospho_embed.discovery._discover import adiscover_intents, discover_intents
from phospho_embed.discovery._metrics import ClusterQuality, Evaluation
from phospho_embed.discovery._naming import Namer, NamingWarning
from phospho_embed.discovery._result import DiscoveredIntent, DiscoveryResult, MessageRecord
from phospho_embed.discovery._trend import DriftRow, Records, TrendRow

__all__ = [
    "INSTALL_HINT",
    "ClusterQuality",
    "DiscoveredIntent",
    "DiscoveryResult",
    "DriftRow",
    "Evaluation",
    "MessageRecord",
    "Namer",
    "NamingWarning",
    "Records",
    "Selection",
    "TrendRow",
    "adiscover_intents",
    "discover_intents",
]
