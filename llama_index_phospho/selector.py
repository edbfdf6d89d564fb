"""`PhosphoIntentSelector`: a LlamaIndex selector that picks a choice by intent, with an
out-of-topic fallback, for `RouterQueryEngine` and `RouterRetriever`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_selector import BaseSelector, SelectorResult, SingleSelection
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle
from llama_index.core.tools.types import ToolMetadata

from phospho_embed.encoders import aencode, encode
from phospho_embed.intents import (
    IntentClassifier,
    IntentMatch,
    IntentReport,
    OutOfTopicError,
    example_texts,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# What a classifier depends on: each scored choice's name and utterances, in order.
Key = tuple[tuple[str, tuple[str, ...]], ...]


class PhosphoIntentSelector(BaseSelector):
    """Select the choice whose intent matches the query, or a fallback when none does.

    Unlike ``EmbeddingSingleSelector``, which always picks one and re-embeds every
    description on every query, it embeds each choice once (cached per set of choices),
    can score a choice by example utterances rather than its one description, and rejects
    out-of-topic queries.

    Example:
        ```python
        selector = PhosphoIntentSelector(
            embed_model=PhosphoEmbedding(),
            examples={"billing": ["I was charged twice", ...],
                      "shipping": ["where is my parcel", ...]},
            threshold=0.3,
            fallback_index=2,           # the "anything else" tool
        )
        engine = RouterQueryEngine(selector=selector, query_engine_tools=tools)
        ```

    Args:
        embed_model: the embedder (a `PhosphoEmbedding`; any ``BaseEmbedding`` works).
        examples: choice name -> example utterances; choices without examples are scored
            by their description.
        threshold: the global minimum score (see `IntentClassifier`, with choice names as
            intents); `fit` chooses the rejection settings on labelled queries.
        thresholds: per-choice minimum scores, overriding ``threshold``.
        margin: the minimum gap between the top two choices' scores.
        fallback_index: the position, among the choices, of the one selected for
            out-of-topic queries (it is never scored itself); without it, such queries raise
            `OutOfTopicError`. Checked against the choices at each selection.

    Raises:
        TypeError / ValueError: a bad example (named as ``examples['name'][i]``), or a
            ``fallback_index`` that is not an int >= 0; before any request.
    """

    def __init__(
        self,
        embed_model: BaseEmbedding,
        examples: Mapping[str, Sequence[str]] | None = None,
        threshold: float | None = None,
        thresholds: Mapping[str, float] | None = None,
        margin: float | None = None,
        fallback_index: int | None = None,
    ) -> None:
        self._embed_model = embed_model
        self.examples = {name: list(texts) for name, texts in (examples or {}).items()}
        example_texts(self.examples)  # bad examples fail here, before any request
        if fallback_index is not None and (
            isinstance(fallback_index, bool)
            or not isinstance(fallback_index, int)
            or fallback_index < 0
        ):
            raise ValueError(f"fallback_index must be an int >= 0 or None, got {fallback_index!r}")
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})
        self.margin = margin
        self.fallback_index = fallback_index
        self._classifiers: dict[Key, IntentClassifier] = {}
        # Concurrent first queries (RouterQueryEngine under asyncio.gather) share one build;
        # a build leaves this dict when it ends, and only a successful one is cached.
        self._building: dict[Key, asyncio.Task[IntentClassifier]] = {}

    def _get_prompts(self) -> dict[str, Any]:
        """No prompts: the selection is by embeddings."""
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        """No prompts to update."""

    # -- selection --------------------------------------------------------------------------

    def _select(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        key, utterances = self._scored(choices)
        classifier = self._classifiers.get(key)
        if classifier is None:
            vectors = encode(self._embed_model, example_texts(utterances))
            classifier = self._classifiers[key] = self._build(utterances, vectors)
        vector = self._embed_model.get_query_embedding(query.query_str)
        return self._result(choices, classifier.classify_vectors([vector])[0])

    async def _aselect(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        key, utterances = self._scored(choices)
        classifier = self._classifiers.get(key) or await self._shared_build(key, utterances)
        vector = await self._embed_model.aget_query_embedding(query.query_str)
        return self._result(choices, classifier.classify_vectors([vector])[0])

    def fit(
        self,
        texts: Sequence[str],
        intents: Sequence[str | None],
        choices: Sequence[ToolMetadata] | None = None,
    ) -> IntentReport:
        """Choose the rejection thresholds on labelled queries (``None`` = out of topic).

        ``intents`` are choice names. Without ``choices``, the classifier is the one of
        ``examples`` alone. The thresholds found then apply to every set of choices.
        """
        utterances = self._scored(choices)[1] if choices is not None else self.examples
        classifier = self._build(utterances, encode(self._embed_model, example_texts(utterances)))
        queries = encode(self._embed_model, texts)
        report = classifier.fit_vectors(queries, intents).evaluate_vectors(queries, intents)
        self.threshold, self.thresholds, self.margin = (
            classifier.threshold_,
            classifier.thresholds_,
            classifier.margin_,
        )
        # Classifiers built with the old thresholds are stale; this one is ready to use.
        self._classifiers = {_key(utterances): classifier}
        return report

    # -- helpers ----------------------------------------------------------------------------

    def _scored(self, choices: Sequence[ToolMetadata]) -> tuple[Key, dict[str, list[str]]]:
        """The cache key of ``choices`` and the utterances of each choice that is scored."""
        if self.fallback_index is not None and self.fallback_index >= len(choices):
            raise ValueError(
                f"fallback_index is {self.fallback_index}, but there are only {len(choices)} "
                f"choices (positions 0 to {len(choices) - 1}): it must be the position of the "
                "choice that takes out-of-topic queries"
            )
        utterances: dict[str, list[str]] = {}
        for index, choice in enumerate(choices):
            if index == self.fallback_index:
                continue
            name = _name(choice)
            if name in utterances:
                raise ValueError(f"two choices are both named {name!r}")
            utterances[name] = self.examples.get(name) or [choice.description]
        if not utterances:
            raise ValueError("no choice to select from besides the fallback")
        return _key(utterances), utterances

    def _build(
        self, utterances: Mapping[str, list[str]], vectors: NDArray[np.float32]
    ) -> IntentClassifier:
        return IntentClassifier.from_embedded_examples(
            utterances,
            vectors,
            threshold=self.threshold,
            thresholds={k: v for k, v in self.thresholds.items() if k in utterances},
            margin=self.margin,
        )

    async def _shared_build(
        self, key: Key, utterances: Mapping[str, list[str]]
    ) -> IntentClassifier:
        """The classifier of ``key``, built once for all the queries waiting for it."""
        task = self._building.get(key)
        # A task of another event loop (LlamaIndex runs code on fresh loops) cannot be awaited.
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._abuild(key, utterances))
            self._building[key] = task
            task.add_done_callback(partial(self._build_ended, key))
        # Shielded: a caller cancelled while waiting must not cancel the others' build.
        return await asyncio.shield(task)

    async def _abuild(self, key: Key, utterances: Mapping[str, list[str]]) -> IntentClassifier:
        vectors = await aencode(self._embed_model, example_texts(utterances))
        classifier = self._classifiers[key] = self._build(utterances, vectors)
        return classifier

    def _build_ended(self, key: Key, task: asyncio.Task[IntentClassifier]) -> None:
        """Forget a finished build, so a failed or cancelled one is tried again next time."""
        if self._building.get(key) is task:
            del self._building[key]
        if not task.cancelled():
            # Marks the error as retrieved: when every waiter was cancelled, nobody else does.
            task.exception()

    def _result(self, choices: Sequence[ToolMetadata], match: IntentMatch) -> SelectorResult:
        if match.intent is not None:
            index = next(
                i
                for i, choice in enumerate(choices)
                if i != self.fallback_index and _name(choice) == match.intent
            )
            reason = f"intent {match.intent!r} (score {match.score:.2f})"
        elif self.fallback_index is not None:
            index = self.fallback_index
            reason = f"out of topic (closest {match.top!r}, score {match.score:.2f}): fallback"
        else:
            raise OutOfTopicError(match)
        return SelectorResult(selections=[SingleSelection(index=index, reason=reason)])


def _key(utterances: Mapping[str, list[str]]) -> Key:
    return tuple((name, tuple(texts)) for name, texts in utterances.items())


def _name(choice: ToolMetadata) -> str:
    # Query engine tools have names; plain string choices only have a description.
    return choice.name or choice.description
