"""A small customer-support intent set, written for this project (public domain).

Used by ``phospho-embed demo``, the tests and the docs: six intents with example utterances,
labelled messages to fit rejection thresholds on (``LABELLED``), other labelled messages to
measure the fitted classifier on (``HELD_OUT``, never used for fitting), and fresh messages
(``MESSAGES``) that are paraphrases: none shares a content word with its intent's examples,
so they are recognised by meaning, not wording (the emulator's semantic vectors find them;
its lexical vectors reject them all). Two of them match no intent (out of topic).
``UNLABELLED`` is a week of messages as a support team gets them, without labels, for intent
discovery: the six intents, plus two that no example covers (discount codes, opening hours).
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
        "I ordered by mistake, please void it",
        "withdraw my order, I do not want it anymore",
    ],
    "track_parcel": [
        "where is my parcel",
        "track my package",
        "my delivery is late, where is it",
        "when will my parcel arrive",
        "the tracking number shows no update",
        "has my package shipped yet",
        "the courier has not delivered my box",
        "what is the status of my delivery",
    ],
    "refund": [
        "I want a refund",
        "give me my money back",
        "how long does a refund take",
        "refund the damaged item",
        "I returned the item, where is my refund",
        "can I get a refund for my order",
        "I was charged twice, reimburse me",
        "pay me back for the faulty product",
    ],
    "reset_password": [
        "I forgot my password",
        "reset my password",
        "I cannot log in to my account",
        "the password reset email never came",
        "how do I change my password",
        "my account is locked after too many login attempts",
        "my sign in credentials are rejected",
        "I need a new PIN to access my profile",
    ],
    "change_address": [
        "change my delivery address",
        "I moved, update my shipping address",
        "can I send the order to another address",
        "the address on my order is wrong",
        "update the address for my next delivery",
        "deliver my parcel to my office address instead",
        "I relocated to a new city, ship there",
        "fix the street and postcode on my account",
    ],
    "talk_to_human": [
        "I want to talk to a human",
        "let me speak to an agent",
        "connect me with customer service",
        "is there a real person I can talk to",
        "call me back please",
        "I need to speak with someone now",
        "transfer me to a representative",
        "I would like a word with a support employee",
    ],
}
"""Intent name -> example utterances."""

LABELLED: list[tuple[str, str | None]] = [
    ("please cancel my order now", "cancel_order"),
    ("I no longer want this purchase", "cancel_order"),
    ("cancel the order I made this morning", "cancel_order"),
    ("where is my package", "track_parcel"),
    ("my parcel tracking has not moved in days", "track_parcel"),
    ("when will the delivery come", "track_parcel"),
    ("I still have not received my refund", "refund"),
    ("money back for the broken item please", "refund"),
    ("return the payment to my card", "refund"),
    ("I forgot the password to my account", "reset_password"),
    ("the reset email for my password did not arrive", "reset_password"),
    ("my login does not work", "reset_password"),
    ("please update my delivery address", "change_address"),
    ("ship it to a different address", "change_address"),
    ("I moved to a new house", "change_address"),
    ("can I talk to a real human agent", "talk_to_human"),
    ("put me through to customer service", "talk_to_human"),
    ("transfer me to an operator", "talk_to_human"),
    ("what is the weather like in Paris tomorrow", None),
    ("tell me a joke about cats", None),
    ("who won the football game last night", None),
    ("recommend a good pizza recipe", None),
    ("what is the capital of Australia", None),
    ("play some relaxing music", None),
    ("how tall is the Eiffel tower", None),
    ("translate hello into Spanish", None),
]
"""Messages with their intent (``None`` = out of topic), to fit thresholds on."""

HELD_OUT: list[tuple[str, str | None]] = [
    ("stop my purchase, I do not need it anymore", "cancel_order"),
    ("I wish to undo my last purchase", "cancel_order"),
    ("the courier never showed up", "track_parcel"),
    ("how far along is my shipment", "track_parcel"),
    ("I was charged twice, give it back", "refund"),
    ("can I get reimbursed for this", "refund"),
    ("I am locked out of my account", "reset_password"),
    ("my credentials are not accepted", "reset_password"),
    ("send future parcels to my new home", "change_address"),
    ("my street name is misspelled on the order", "change_address"),
    ("I would rather speak with a person", "talk_to_human"),
    ("get me an operator on the phone", "talk_to_human"),
    ("what time does the sun set today", None),
    ("write a poem about the sea", None),
    ("how many legs does a spider have", None),
    ("suggest a movie for tonight", None),
]
"""Messages with their intent, to measure a classifier fitted on ``LABELLED``."""

EXPECTED: list[tuple[str, str | None]] = [
    ("I no longer need what I bought, please halt it", "cancel_order"),
    ("my shipment seems lost in transit", "track_parcel"),
    ("return the cash for the broken blender", "refund"),
    ("what's the best pizza in Naples?", None),
    ("the site keeps rejecting my passcode", "reset_password"),
    ("I'd rather chat with a staff member", "talk_to_human"),
    ("will it rain on Mars this weekend?", None),
]
"""Fresh messages for the demo, with the intent each means (``None`` = out of topic)."""

MESSAGES: list[str] = [text for text, _ in EXPECTED]
"""The fresh messages alone: five in topic, two out of topic."""

NEW_INTENTS: dict[str, list[str]] = {
    "discount_code": [
        "my discount code does not work",
        "the promo code is rejected at checkout",
        "how do I apply a coupon",
        "where do I enter my voucher code",
        "is there a discount for students",
        "the coupon says expired but it should be valid",
        "can I use two promo codes on one order",
        "my voucher was not applied to the total",
    ],
    "store_hours": [
        "what time does your shop open",
        "are you open on Sunday",
        "what are your opening hours",
        "when does the store close tonight",
        "is the shop open on public holidays",
        "what time do you open tomorrow morning",
        "are your stores open late on Friday",
    ],
}
"""Two intents customers ask about that ``EXAMPLES`` does not cover: what gap analysis finds."""

UNLABELLED_INTENTS: list[tuple[str, str]] = sorted(
    [(text, intent) for intent, texts in EXAMPLES.items() for text in texts]
    + [(text, intent) for text, intent in LABELLED + HELD_OUT if intent is not None]
    + [(text, intent) for intent, texts in NEW_INTENTS.items() for text in texts],
    key=lambda pair: (len(pair[0]) * 7919 + sum(map(ord, pair[0]))) % 101,
)
"""Every in-topic message above with its intent, in a fixed mixed order (the gold labels)."""

UNLABELLED: list[str] = [text for text, _ in UNLABELLED_INTENTS]
"""``UNLABELLED_INTENTS`` without the labels: what intent discovery is given."""
