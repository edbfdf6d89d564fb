"""What classifying one text gives: `IntentMatch`, and `OutOfTopicError` for routers that
have nowhere to send a text that matches no intent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phospho_embed.errors import PhosphoError


@dataclass(frozen=True)
class IntentMatch:
    """The outcome of classifying one text.

    Attributes:
        intent: the chosen intent, or ``None`` when the text is out of topic.
        score: the top intent's score (cosine-based, unitless, higher is closer; at most 1).
        margin: the top score minus the second intent's score (the top score itself when
            there is a single intent).
        scores: every intent's score, by name.
        top: the best-scoring intent, even when it was rejected.
    """

    intent: str | None
    score: float
    margin: float
    scores: dict[str, float]
    top: str

    @property
    def out_of_topic(self) -> bool:
        """Whether the text matched none of the intents (``intent is None``)."""
        return self.intent is None


class OutOfTopicError(PhosphoError, ValueError):
    """A text matched none of the intents and there is no default to send it to.

    Args:
        match: the rejected match.

    Attributes:
        match: the rejected `IntentMatch` (its ``top``, ``score`` and ``scores`` say how close
            the text came).
    """

    def __init__(self, match: IntentMatch) -> None:
        super().__init__(
            f"the text matches none of the intents (closest: {match.top!r}, "
            f"score {match.score:.3f}) and no default route is set"
        )
        self.match = match

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.match,))
