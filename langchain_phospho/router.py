"""`PhosphoIntentRouter`: a LangChain ``Runnable`` that sends each input to the chain of its
intent, or to a default chain when the input matches no intent."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.base import coerce_to_runnable
from langchain_core.runnables.config import get_config_list

from phospho_embed import wire
from phospho_embed.encoders import aencode, aencode_each, encode, encode_each
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
    route once on its share of the inputs. With ``return_exceptions=True``, an input that
    cannot be classified (not a string, blank, too long for the model, out of topic without
    ``default``) gets its exception as its output, and the others go on.

    Args:
        examples: intent name -> example utterances (or pass ``classifier``).
        routes: intent name -> the runnable that handles it; every intent needs one.
        default: the runnable for inputs that match no intent; without it, such inputs
            raise `OutOfTopicError`.
        embeddings: the embedder: a `PhosphoEmbeddings`, or any LangChain ``Embeddings``.
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
        embeddings: Embeddings,
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
            intents = classifier.intents_
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
        """The intent match of each input (one concurrent embedding call).

        Raises:
            TypeError / ValueError: an input is not a text (see ``input_key``) or is blank.
            PhosphoError: embedding failed.
        """
        texts = [self._text(value) for value in inputs]
        return self._ready().classify_vectors(encode(self.embeddings, texts))

    async def aclassify(self, inputs: Sequence[Any]) -> list[IntentMatch]:
        """Async `classify`.

        Raises:
            TypeError / ValueError / PhosphoError: as `classify`.
        """
        texts = [self._text(value) for value in inputs]
        return (await self._aready()).classify_vectors(await aencode(self.embeddings, texts))

    def fit(self, texts: Sequence[str], intents: Sequence[str | None]) -> IntentReport:
        """Choose the rejection thresholds on labelled texts (``None`` = out of topic); returns
        the report of the fitted classifier on these texts (see `IntentClassifier.fit`).

        Raises:
            ValueError: not one label per text, or a label that is not an intent.
            PhosphoError: embedding failed.
        """
        vectors = encode(self.embeddings, texts)
        return self._ready().fit_vectors(vectors, intents).evaluate_vectors(vectors, intents)

    @property
    def classifier(self) -> IntentClassifier:
        """The underlying classifier (built on first access, embedding the examples)."""
        return self._ready()

    # -- Runnable ---------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Classify ``input`` and run its route (or ``default``) on it.

        Raises:
            OutOfTopicError: ``input`` matches no intent and there is no ``default``.
            TypeError / ValueError / PhosphoError: as `classify`, or what the route raised.
        """
        [match] = self.classify([input])
        return self._route(match).invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Async `invoke`.

        Raises:
            OutOfTopicError / TypeError / ValueError / PhosphoError: as `invoke`.
        """
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
        """Classify every input in one concurrent call, then run each route on its inputs.

        Outputs are in input order. With ``return_exceptions``, each input that fails (bad or
        blank text, embedding error, out of topic without ``default``, its route's error)
        gets its exception as output, and the vectors of the others are used; without it,
        the first error is raised (a bad or blank input before anything is sent).
        """
        job = _Batch(self, inputs, config, return_exceptions)
        if job.texts:
            outcomes = encode_each(self.embeddings, job.texts, return_exceptions=return_exceptions)
            job.classify(self._ready(), outcomes)
        for route, indices in job.groups:
            own_inputs, own_configs = job.share(indices)
            results = route.batch(
                own_inputs, own_configs, return_exceptions=return_exceptions, **kwargs
            )
            job.done(indices, results)
        return job.outputs

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[Any]:
        """Async `batch`: the routes run concurrently."""
        job = _Batch(self, inputs, config, return_exceptions)
        if job.texts:
            outcomes = await aencode_each(
                self.embeddings, job.texts, return_exceptions=return_exceptions
            )
            job.classify(await self._aready(), outcomes)

        async def run(route: Runnable[Any, Any], indices: list[int]) -> None:
            own_inputs, own_configs = job.share(indices)
            results = await route.abatch(
                own_inputs, own_configs, return_exceptions=return_exceptions, **kwargs
            )
            job.done(indices, results)

        await asyncio.gather(*(run(route, indices) for route, indices in job.groups))
        return job.outputs

    # -- helpers ----------------------------------------------------------------------------

    def _route(self, match: IntentMatch) -> Runnable[Any, Any]:
        if match.intent is not None:
            return self.routes[match.intent]
        if self.default is None:
            raise OutOfTopicError(match)
        return self.default

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
                vectors = encode(self.embeddings, example_texts(self._examples))
                self._classifier = self._build(vectors)
            return self._classifier

    async def _aready(self) -> IntentClassifier:
        if self._classifier is None:
            vectors = await aencode(self.embeddings, example_texts(self._examples))
            if self._classifier is None:  # another task may have finished first
                self._classifier = self._build(vectors)
        return self._classifier

    def _build(self, vectors: NDArray[np.float32]) -> IntentClassifier:
        return IntentClassifier.from_embedded_examples(
            self._examples, vectors, encoder=self.embeddings, **self._options
        )


class _Batch:
    """The bookkeeping of one `batch` or `abatch` call, free of I/O, so that the two only
    differ in how they embed and run the routes.

    Args:
        router: the router.
        inputs: the batch's inputs.
        config: one config for all, or one per input.
        return_exceptions: keep each input's error as its output, rather than raising.

    Raises:
        TypeError / ValueError: without ``return_exceptions``, the first input that is not a
            text (see ``input_key``) or is blank, before anything is sent.
    """

    def __init__(
        self,
        router: PhosphoIntentRouter,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None,
        return_exceptions: bool,
    ) -> None:
        self.inputs = inputs
        self.configs = get_config_list(config, len(inputs))
        self.outputs: list[Any] = [None] * len(inputs)
        self.groups: list[tuple[Runnable[Any, Any], list[int]]] = []
        self.texts: list[str] = []
        self._router = router
        self._return_exceptions = return_exceptions
        self._embedded: list[int] = []  # the input index of each of ``texts``
        for i, value in enumerate(inputs):
            try:
                text = wire.check_text(router._text(value), f"inputs[{i}]")
            except (TypeError, ValueError) as error:
                self._fail(i, error)
                continue
            self.texts.append(text)
            self._embedded.append(i)

    def classify(
        self, classifier: IntentClassifier, outcomes: list[NDArray[np.float32] | Exception]
    ) -> None:
        """Classify the vectors of ``texts`` (an exception where a text got none) and group
        the inputs by the runnable that handles them, in `groups`."""
        vectors: list[tuple[int, NDArray[np.float32]]] = []
        for i, outcome in zip(self._embedded, outcomes, strict=True):
            if isinstance(outcome, Exception):
                self._fail(i, outcome)
            else:
                vectors.append((i, outcome))
        if not vectors:
            return
        matches = classifier.classify_vectors([vector for _, vector in vectors])
        by_route: dict[int, tuple[Runnable[Any, Any], list[int]]] = {}
        for (i, _), match in zip(vectors, matches, strict=True):
            try:
                route = self._router._route(match)
            except OutOfTopicError as error:
                self._fail(i, error)
                continue
            by_route.setdefault(id(route), (route, []))[1].append(i)
        self.groups = list(by_route.values())

    def share(self, indices: list[int]) -> tuple[list[Any], list[RunnableConfig]]:
        """The inputs and configs of ``indices``, for their route's ``batch``."""
        return [self.inputs[i] for i in indices], [self.configs[i] for i in indices]

    def done(self, indices: list[int], results: list[Any]) -> None:
        """Record a route's results for its ``indices``."""
        for i, result in zip(indices, results, strict=True):
            self.outputs[i] = result

    def _fail(self, index: int, error: Exception) -> None:
        if not self._return_exceptions:
            raise error
        self.outputs[index] = error
