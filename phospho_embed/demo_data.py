"""A small customer-support intent set, written for this project (public domain).

Used by ``phospho-embed demo``, the tests and the docs: six intents with example utterances,
labelled messages to fit and check rejection thresholds on, and messages that match none of
the intents (out of topic).
"""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "cancel_order": [
        "I want to cancel my order",
        "please cancel the order I placed yesterday",
        "how do I cancel an order",
        "cancel my purchase before it ships",
        "I changed my mind, cancel the order",
        "can you stop my order from being shipped",
    ],
    "track_parcel": [
        "where is my parcel",
        "track my package",
        "my delivery is late, where is it",
        "when will my parcel arrive",
        "the tracking number shows no update",
        "has my package shipped yet",
    ],
    "refund": [
        "I want a refund",
        "give me my money back",
        "how long does a refund take",
        "refund the damaged item",
        "I returned the item, where is my refund",
        "can I get a refund for my order",
    ],
    "reset_password": [
        "I forgot my password",
        "reset my password",
        "I cannot log in to my account",
        "the password reset email never came",
        "how do I change my password",
        "my account is locked after too many login attempts",
    ],
    "change_address": [
        "change my delivery address",
        "I moved, update my shipping address",
        "can I send the order to another address",
        "the address on my order is wrong",
        "update the address for my next delivery",
        "deliver my parcel to my office address instead",
    ],
    "talk_to_human": [
        "I want to talk to a human",
        "let me speak to an agent",
        "connect me with customer service",
        "is there a real person I can talk to",
        "call me back please",
        "I need to speak with someone now",
    ],
}
"""Intent name -> example utterances."""

LABELLED: list[tuple[str, str | None]] = [
    ("please cancel my order now", "cancel_order"),
    ("cancel the order I made this morning", "cancel_order"),
    ("where is my package", "track_parcel"),
    ("my parcel tracking has not moved in days", "track_parcel"),
    ("I still have not received my refund", "refund"),
    ("money back for the broken item please", "refund"),
    ("I forgot the password to my account", "reset_password"),
    ("the reset email for my password did not arrive", "reset_password"),
    ("please update my delivery address", "change_address"),
    ("ship it to a different address", "change_address"),
    ("can I talk to a real human agent", "talk_to_human"),
    ("put me through to customer service", "talk_to_human"),
    ("what is the weather like in Paris tomorrow", None),
    ("tell me a joke about cats", None),
    ("who won the football game last night", None),
    ("recommend a good pizza recipe", None),
    ("what is the capital of Australia", None),
    ("play some relaxing music", None),
]
"""Messages with their intent (``None`` = out of topic), to fit thresholds on."""

MESSAGES: list[str] = [
    "hi, can you cancel the order I placed?",
    "where is my parcel, it is late",
    "I want my money back for the damaged item",
    "what is the best pizza in Naples?",
    "I can't log in, I forgot my password",
    "let me talk to a human please",
    "what's the weather like on Mars?",
]
"""Fresh messages for the demo: five in topic, two out of topic."""
