"""Naming intents with a model: a LangChain chat model or any function of example texts.

phospho's platform names the intents it finds with an LLM; `discover_intents` does the same
when given ``namer=``. Naming is never required: each intent has a keyword name first, and a
namer that fails (raises, times out, answers nothing) leaves that name in place, recorded in
``DiscoveryResult.naming_errors`` and reported in one `NamingWarning`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeAlias

__all__ = ["Namer", "NamingWarning", "name_intents"]

#: Longest name kept from a namer (longer answers are cut at a word boundary).
MAX_NAME_LENGTH = 60
#: Example texts shown to a chat model per intent.
PROMPT_EXAMPLES = 8

#: A label some models put before the name.
_LABEL = re.compile(r"(intent|name)\s*:", re.IGNORECASE)

_PROMPT = """\
These messages were sent by users of a product, and they share one intent:
{examples}
Frequent keywords: {keywords}.
Name that intent in 2 to 5 words, like "cancel an order" or "reset password".
Answer with the name only."""


class ChatModel(Protocol):
    """What is used of a LangChain chat model (or any runnable): ``invoke(prompt)``."""

    def invoke(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        """Answer ``input``; the answer (or its ``.content``) is the name."""
        ...


Namer: TypeAlias = ChatModel | Callable[[list[str]], str]
"""A LangChain chat model (anything with ``.invoke`` returning a message with ``.content``,
or a string), or a function from an intent's example texts to its name."""


class NamingWarning(UserWarning):
    """Some intents could not be named by the namer and kept their keyword names."""


def name_intents(
    namer: Namer,
    examples: Sequence[list[str]],
    keywords: Sequence[list[str]],
    *,
    max_concurrency: int,
) -> tuple[list[str | None], dict[int, str]]:
    """Ask ``namer`` for each intent's name, at most ``max_concurrency`` at once (threads).

    Args:
        namer: a chat model or a function (see `Namer`).
        examples: per intent, its most representative messages.
        keywords: per intent, its keywords (shown to a chat model).
        max_concurrency: names asked for at the same time.

    Returns:
        The names (``None`` where naming failed) and, for each failure, the intent's index
        and a one-line reason. Never raises for a failing namer.
    """
    ask = _asker(namer)

    def one(index: int) -> str | BaseException | None:
        try:
            return _clean(ask(examples[index], keywords[index]))
        except Exception as error:  # a namer may fail any way it likes; never fatal
            return error

    names: list[str | None] = []
    errors: dict[int, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(examples)))) as pool:
        for index, outcome in enumerate(pool.map(one, range(len(examples)))):
            if isinstance(outcome, BaseException):
                errors[index] = f"{type(outcome).__name__}: {outcome}"
                names.append(None)
            else:
                names.append(outcome)
    return names, errors


def warn_failures(errors: dict[int, str], total: int) -> None:
    """One `NamingWarning` summing up the intents the namer could not name, if any."""
    if not errors:
        return
    first = min(errors)
    warnings.warn(
        f"the namer failed for {len(errors)} of {total} intents, which keep their keyword "
        f"names (first: intent {first}: {errors[first]}); see naming_errors",
        NamingWarning,
        stacklevel=3,
    )


def _asker(namer: Namer) -> Callable[[list[str], list[str]], Any]:
    invoke = getattr(namer, "invoke", None)
    if callable(invoke):
        return lambda texts, keywords: invoke(_prompt(texts, keywords))
    if callable(namer):
        return lambda texts, keywords: namer(list(texts))
    raise TypeError(
        "namer must be a LangChain chat model (with .invoke) or a function from a list of "
        f"example texts to a name; got {type(namer).__name__}"
    )


def _prompt(texts: list[str], keywords: list[str]) -> str:
    lines = "\n".join(f"- {' '.join(text.split())}" for text in texts[:PROMPT_EXAMPLES])
    return _PROMPT.format(examples=lines, keywords=", ".join(keywords) or "(none)")


def _clean(answer: Any) -> str:
    """The name in a namer's answer: a message's ``content`` or a string, first line, without
    quotes or a trailing full stop, at most `MAX_NAME_LENGTH` characters.

    Raises:
        ValueError: the answer holds no text.
        TypeError: the answer is neither a string nor a message with string content.
    """
    content = getattr(answer, "content", answer)
    if isinstance(content, list):  # content blocks: keep the text ones
        content = " ".join(
            block if isinstance(block, str) else str(block.get("text", ""))
            for block in content
            if isinstance(block, (str, dict))
        )
    if not isinstance(content, str):
        raise TypeError(f"the namer answered {type(content).__name__!r}, not a string")
    lines = [line.strip() for line in content.strip().splitlines() if line.strip()]
    name = lines[0].strip(" \"'`*.").strip() if lines else ""
    label = _LABEL.match(name)  # "Intent: ..." or "Name: ..."
    if label:
        name = name[label.end() :].strip(" \"'`*.")
    if not name:
        raise ValueError("the namer answered an empty name")
    if len(name) > MAX_NAME_LENGTH:
        name = name[:MAX_NAME_LENGTH].rsplit(" ", 1)[0].rstrip(",;:-") + "..."
    return name
