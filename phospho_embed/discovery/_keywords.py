"""Keywords of each intent: class-based TF-IDF (c-TF-IDF), as in BERTopic.

Grootendorst, "BERTopic: Neural topic modeling with a class-based TF-IDF procedure" (2022):
the messages of one intent are treated as one document, and a term's weight in intent c is

    W(t, c) = tf(t, c) * log(1 + A / f(t))

where tf(t, c) is the term's frequency in c divided by c's number of terms, f(t) the term's
frequency over all intents and A the average number of terms per intent. Terms frequent in
one intent and rare in the others come first.

Terms are words and word pairs counted by scikit-learn's ``CountVectorizer`` with its
English stop-word list: stop words are handled for **English** only; other languages keep
their function words (pass ``stop_words`` through `discover_intents` to change that). A
word is two characters or more with at least one letter: numbers alone (order numbers,
amounts) say little about an intent, while "6am" or "401k" do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from phospho_embed.discovery._deps import require

if TYPE_CHECKING:
    from numpy.typing import NDArray


#: Words of two or more characters with at least one letter (see the module's docstring).
WORD_PATTERN = r"(?u)\b(?=\w*[^\W\d_])\w\w+\b"


class Keyword(NamedTuple):
    """One term of an intent: its c-TF-IDF weight and how often it occurs in the intent."""

    term: str
    weight: float
    occurrences: int


def class_tfidf(
    texts: Sequence[str],
    labels: NDArray[np.int64],
    n_intents: int,
    n_keywords: int,
    stop_words: str | Sequence[str] | None = "english",
) -> list[list[Keyword]]:
    """The ``n_keywords`` best terms of each intent ``0 .. n_intents - 1``, best first.

    Args:
        texts: the messages.
        labels: shape (len(texts),): each message's intent, -1 for none (not counted).
        n_intents: how many intents there are.
        n_keywords: terms to keep per intent.
        stop_words: ``CountVectorizer``'s ``stop_words``: ``"english"``, a list, or ``None``.

    Returns:
        One list per intent; empty when its messages have no term outside the stop words.
        Ties are broken alphabetically, so the result is deterministic.
    """
    keywords: list[list[Keyword]] = [[] for _ in range(n_intents)]
    members = np.flatnonzero(labels >= 0)
    if n_intents == 0 or members.size == 0:
        return keywords
    text_module = require("sklearn.feature_extraction.text", "intent keywords")
    sparse = require("scipy.sparse", "intent keywords")
    vectorizer = text_module.CountVectorizer(
        stop_words=stop_words, ngram_range=(1, 2), token_pattern=WORD_PATTERN
    )
    try:
        counts = vectorizer.fit_transform([texts[int(i)] for i in members])
    except ValueError:  # only stop words (or no word at all): nothing to rank
        return keywords
    terms = vectorizer.get_feature_names_out()
    onehot = sparse.csr_matrix(
        (np.ones(members.size), (labels[members], np.arange(members.size))),
        shape=(n_intents, members.size),
    )
    per_intent = (onehot @ counts).tocsr().astype(np.float64)  # (intents, terms)
    totals = np.asarray(per_intent.sum(axis=1)).ravel()
    frequency = np.asarray(per_intent.sum(axis=0)).ravel()
    average = totals.sum() / max(1, int((totals > 0).sum()))
    idf = np.log1p(average / np.maximum(frequency, 1.0))
    for intent in range(n_intents):
        start, stop = per_intent.indptr[intent], per_intent.indptr[intent + 1]
        if start == stop:
            continue
        columns = per_intent.indices[start:stop]
        weights = per_intent.data[start:stop] / totals[intent] * idf[columns]
        order = np.lexsort((terms[columns], -weights))[:n_keywords]
        keywords[intent] = [
            Keyword(str(terms[columns[i]]), float(weights[i]), int(per_intent.data[start + i]))
            for i in order
        ]
    return keywords


def keyword_name(keywords: Sequence[Keyword], fallback: str, terms: int = 3) -> str:
    """A short name from the best keywords: up to ``terms`` of them, best first.

    A term whose words are all in the name already is skipped ("deposit" after "direct
    deposit"); a word is replaced by a word pair containing it when the pair accounts for
    at least half of the word's occurrences ("score" becomes "credit score", but "uber" does
    not become "need uber" when users also say "book uber" and "like uber").
    """
    chosen: list[Keyword] = []
    for keyword in keywords:
        words = set(keyword.term.split())
        if words <= {word for taken in chosen for word in taken.term.split()}:
            continue
        replaced = [
            i
            for i, taken in enumerate(chosen)
            if " " not in taken.term
            and taken.term in words
            and 2 * keyword.occurrences >= taken.occurrences
        ]
        if replaced:
            chosen[replaced[0]] = keyword
            chosen = [taken for i, taken in enumerate(chosen) if i not in replaced[1:]]
        elif any(word in words for taken in chosen for word in taken.term.split()):
            continue  # overlaps a term already in the name without being worth a swap
        else:
            chosen.append(keyword)
        if len(chosen) == terms:
            break
    return ", ".join(keyword.term for keyword in chosen) if chosen else fallback
