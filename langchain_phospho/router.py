"""`PhosphoIntentRouter`: a LangChain ``Runnable`` that sends each input to the chain of its
intent, or to a default chain when the input matches no intent."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.base import coerce_to_runnable
from langchain_core.runnables.config import get_config_list

from langchain_phospho.embeddings import PhosphoEmbeddings
from phospho_embed.intents import (
    IntentClassifier,
    IntentMatch,
    IntentReport,
    OutOfTopicError,
    example_texts,
)


class PhosphoIntentRouter(Runnable[Any, Any]):
    """Route inputs by intent, with out-of-topic inputs going to ``default``.

    Example:
        ```python
        router = PhosphoIntentRouter(
            examples={"refund": ["I want my money back", ...],
                      "shipping": ["where is my parcel", ...]},
            routes={"refund": refund_chain, "shipping": shipping_chain},
            default=small_talk_chain,
            embeddings=PhosphoEmbeddings(),
            threshold=0.3,
        )
        router.invoke("has my package shipped?")     # runs shipping_chain
        ```

    The examples are embedded once, at the first call (concurrently). ``batch`` and
    ``abatch`` classify all their inputs with one concurrent embedding call, then run each
    route once on its share of the inputs.

    Args:
        examples: intent name -> example utterances (or pass ``classifier``).
        routes: intent name -> the runnable that handles it; every intent needs one.
        default: the runnable for inputs that match no intent; without it, such inputs
            raise `OutOfTopicError`.
        embeddings: the embedder (a `PhosphoEmbeddings`).
        classifier: an `IntentClassifier` built beforehand (e.g. `IntentClassifier.load`),
            instead of ``examples``.
        input_key: when inputs are dicts, the key holding the text to classify.
        threshold: the global minimum score (see `IntentClassifier`); `fit` chooses the
            rejection settings on labelled data. With ``classifier``, the classifier's own
            settings apply: giving this (or ``thresholds``, ``margin``) too is a
            ``ValueError``.
        thresholds: per-intent minimum scores, overriding ``threshold``.
        margin: the minimum gap between the top two intents' scores.
    """

    def __init__(
        self,
        *,
        routes: Mapping[str, Runnable[Any, Any] | Callable[[Any], Any]],
        embeddings: PhosphoEmbeddings,
        examples: Mapping[str, Sequence[str]] | None = None,
        classifier: IntentClassifier | None = None,
        default: Runnable[Any, Any] | Callable[[Any], Any] | None = None,
        input_key: str | None = None,
        threshold: float | None = None,
        thresholds: Mapping[str, float] | None = None,
        margin: float | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "threshold": threshold,
            "thresholds": thresholds,
            "margin": margin,
        }
        if examples is not None and classifier is None:
            intents = list(examples)
        elif classifier is not None and examples is None:
            intents = classifier.intents
            given = [name for name, value in options.items() if value is not None]
            if given:
                # They would be silently ignored: the classifier has its own.
                raise ValueError(
                    f"{', '.join(given)} cannot be given with classifier=, which has its own "
                    "rejection settings: set them on the classifier (or fit it)"
                )
        else:
            raise ValueError("give exactly one of examples= or classifier=")
        missing = [name for name in intents if name not in routes]
        extra = [name for name in routes if name not in intents]
        if missing or extra:
            raise ValueError(
                f"routes and intents differ: no route for {missing}, no intent for {extra}"
            )
        self.routes = {name: coerce_to_runnable(route) for name, route in routes.items()}
        self.default = coerce_to_runnable(default) if default is not None else None
        self.embeddings = embeddings
        self.input_key = input_key
        self._examples = {name: list(texts) for name, texts in (examples or {}).items()}
        self._options = options
        self._classifier = classifier
        self._lock = threading.Lock()

    # -- classification ---------------------------------------------------------------------

    def classify(self, inputs: Sequence[Any]) -> list[IntentMatch]:
        """The intent match of each input (one concurrent embedding call)."""
        vectors = self.embeddings.embed_documents([self._text(value) for value in inputs])
        return self._ready().classify_vectors(vectors)

    async def aclassify(self, inputs: Sequence[Any]) -> list[IntentMatch]:
        """Async `classify`."""
        vectors = await self.embeddings.aembed_documents([self._text(value) for value in inputs])
        return (await self._aready()).classify_vectors(vectors)

    def fit(self, texts: Sequence[str], intents: Sequence[str | None]) -> IntentReport:
        """Choose the rejection thresholds on labelled texts (``None`` = out of topic)."""
        return self._ready().fit_vectors(self.embeddings.embed_documents(list(texts)), intents)

    @property
    def classifier(self) -> IntentClassifier:
        """The underlying classifier (built on first access, embedding the examples)."""
        return self._ready()

    # -- Runnable ---------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Classify ``input`` and run its route (or ``default``) on it."""
        [match] = self.classify([input])
        return self._route(match).invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Async `invoke`."""
        [match] = await self.aclassify([input])
        return await self._route(match).ainvoke(input, config, **kwargs)

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """Classify every input in one concurrent call, then run each route on its inputs."""
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        groups = self._groups(self.classify(inputs), return_exceptions)
        outputs: list[Any] = [None] * len(inputs)
        for route, indices in groups:
            if isinstance(route, Exception):
                for i in indices:
                    outputs[i] = route
                continue
            results = route.batch(
                [inputs[i] for i in indices],
                [configs[i] for i in indices],
                return_exceptions=return_exceptions,
                **kwargs,
            )
            for i, result in zip(indices, results, strict=True):
                outputs[i] = result
        return outputs

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """Async `batch`: the routes run concurrently."""
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        groups = self._groups(await self.aclassify(inputs), return_exceptions)
        outputs: list[Any] = [None] * len(inputs)

        async def run(route: Runnable[Any, Any] | Exception, indices: list[int]) -> None:
            if isinstance(route, Exception):
                results: list[Any] = [route] * len(indices)
            else:
                results = await route.abatch(
                    [inputs[i] for i in indices],
                    [configs[i] for i in indices],
                    return_exceptions=return_exceptions,
                    **kwargs,
                )
            for i, result in zip(indices, results, strict=True):
                outputs[i] = result

        await asyncio.gather(*(run(route, indices) for route, indices in groups))
        return outputs

    # -- helpers ----------------------------------------------------------------------------

    def _route(self, match: IntentMatch) -> Runnable[Any, Any]:
        if match.intent is not None:
            return self.routes[match.intent]
        if self.default is None:
            raise OutOfTopicError(match)
        return self.default

    def _groups(
        self, matches: list[IntentMatch], return_exceptions: bool
    ) -> list[tuple[Runnable[Any, Any] | Exception, list[int]]]:
        """Input indices grouped by the runnable (or error) that handles them, in order."""
        groups: dict[int, tuple[Runnable[Any, Any] | Exception, list[int]]] = {}
        for i, match in enumerate(matches):
            try:
                target: Runnable[Any, Any] | Exception = self._route(match)
            except OutOfTopicError as exc:
                if not return_exceptions:
                    raise
                target = exc
            groups.setdefault(id(target), (target, []))[1].append(i)
        return list(groups.values())

    def _text(self, value: Any) -> str:
        if self.input_key is not None:
            if not isinstance(value, Mapping) or self.input_key not in value:
                raise TypeError(f"router input must be a dict with the key {self.input_key!r}")
            value = value[self.input_key]
        if not isinstance(value, str):
            raise TypeError(
                f"router input must be a str (or set input_key=), got {type(value).__name__}"
            )
        return value

    def _ready(self) -> IntentClassifier:
        with self._lock:
            if self._classifier is None:
                vectors = self.embeddings.embed_documents(example_texts(self._examples))
                self._classifier = self._build(vectors)
            return self._classifier

    async def _aready(self) -> IntentClassifier:
        if self._classifier is None:
            vectors = await self.embeddings.aembed_documents(example_texts(self._examples))
            if self._classifier is None:  # another task may have finished first
                self._classifier = self._build(vectors)
        return self._classifier

    def _build(self, vectors: list[list[float]]) -> IntentClassifier:
        return IntentClassifier.from_embedded_examples(
            self._examples, vectors, model=self.embeddings.model, **self._options
        )
