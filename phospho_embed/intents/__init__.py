"""Intent classification with out-of-topic rejection, on phospho intent embeddings.

```python
from phospho_embed import PhosphoClient
from phospho_embed.intents import IntentClassifier

classifier = IntentClassifier.from_examples(
    {"refund": ["I want my money back", "refund my order"],
     "shipping": ["where is my parcel", "my delivery is late"]},
    encoder=PhosphoClient(),   # or a LangChain Embeddings, a LlamaIndex BaseEmbedding
)
classifier.fit(validation_texts, validation_intents)   # None = out of topic
match = classifier.classify("has my package shipped?")
match.intent        # "shipping", or None when the message matches no intent
```

How a text is scored: its embedding is compared (cosine) with every example of every intent,
after removing the examples' mean vector from both ("centering", which stops words and
phrasings shared by all intents from dominating), and an intent's score is the **mean of its
top-k example similarities** (k=5). On CLINC150 this beat taking the best single example
and the intent centroid (see docs/benchmarks.md). The text gets the top intent, unless that
intent's score is under its threshold (a per-intent one, else the global one) or the gap to
the second intent is under the margin: then it is out of topic (``intent=None``). There is
no silent fall-through to a lower intent. `IntentClassifier.fit` chooses the thresholds on
labelled data.

The package's parts: ``_scoring`` (the math on vectors), ``_calibration`` (choosing the
thresholds), ``_report`` (`IntentReport`), ``_persistence`` (the ``.npz`` file),
``_classifier`` (`IntentClassifier`, text in through `phospho_embed.encoders`).

Needs numpy (``pip install "phospho-embed[intents]"``).
"""

# Checked here, before the submodules: a missing numpy is one clear message, however the
# package is imported.
try:
    import numpy as np  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "phospho_embed.intents needs numpy: pip install 'phospho-embed[intents]'"
    ) from exc

from phospho_embed.intents._classifier import IntentClassifier, example_texts
from phospho_embed.intents._match import IntentMatch, OutOfTopicError
from phospho_embed.intents._report import IntentReport, IntentStats
from phospho_embed.intents._scoring import Aggregation

__all__ = [
    "Aggregation",
    "IntentClassifier",
    "IntentMatch",
    "IntentReport",
    "IntentStats",
    "OutOfTopicError",
    "example_texts",
]
