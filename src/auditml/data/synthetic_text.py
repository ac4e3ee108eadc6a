"""The embedded text data: synthetic customer-service records, generated offline with ``faker``.

Each record is one line of the kind a support desk keeps, in one of four categories (the
label): a support ticket, an appointment, an order, an account change. Records carry the
personal data a language model can memorise and an extraction attack can recover: names,
e-mail addresses (faker's, on the reserved example.com/.net/.org domains), phone numbers, street
addresses, dates, amounts, order and account numbers. Everything is made up; no record
describes a real person.

Generation is deterministic: a seeded ``Faker("en_US")`` instance draws every value and choice,
and dates come from a fixed range (never from today's date). The same faker version gives the
same records on every machine; :data:`EMBEDDED_SHA256` pins them, so a faker whose generators
changed is refused (the run directory's member indices would otherwise name other records)
rather than silently auditing other data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from auditml.errors import DataError

CATEGORIES = ("support ticket", "appointment", "order", "account change")
EMBEDDED_POOL_SIZE = 4000
EMBEDDED_SEED = 27
# SHA-256 of the embedded records (see :func:`records_digest`) with the pinned faker.
EMBEDDED_SHA256 = "d5beec4afa70ff26f518b3a5270993bf889219ea7fffb2549412d98e31bb3383"
# The public records (``data.dataset: text_public``): the same generators, another seed; none
# equals an embedded record. What a base model is pretrained on before it is fine-tuned, with
# or without DP, on the embedded (private) records.
PUBLIC_SEED = 2027
PUBLIC_SHA256 = "41c1735be74d90bdf7cdc1845b6bcdf481befa6556070221001aadff03ea936e"

_FIRST_DAY, _LAST_DAY = dt.date(2024, 1, 1), dt.date(2025, 12, 31)
_ISSUES = (
    "my router keeps dropping the connection", "I was charged twice this month",
    "the app crashes when I open my invoices", "I cannot reset my password",
    "my parcel shows as delivered but never arrived", "the card reader declines my card",
    "the heating unit you installed makes a loud noise", "my voicemail stopped working",
)
_SERVICES = (
    "dental check-up", "eye exam", "physiotherapy session", "blood test", "car service",
    "haircut", "tax consultation", "vaccination",
)
_PRODUCTS = (
    "desk lamp", "coffee grinder", "running shoes", "phone case", "wool blanket", "kettle",
    "backpack", "monitor stand", "yoga mat", "water bottle",
)
_PLANS = ("Basic", "Plus", "Family", "Business")


@dataclass(frozen=True)
class TextRecords:
    """Texts and their category labels (int64 ``(N,)``, indices into ``categories``)."""

    texts: tuple[str, ...]
    labels: np.ndarray
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        labels = np.array(self.labels, dtype=np.int64)
        labels.flags.writeable = False  # shared by every caller of the cached generation
        object.__setattr__(self, "labels", labels)
        if len(labels) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(labels)} labels")


def generate_records(count: int = EMBEDDED_POOL_SIZE, *, seed: int = EMBEDDED_SEED) -> TextRecords:
    """``count`` distinct records, the categories in turn (so each has ``count / 4`` records,
    give or take one), the same for the same ``count``, ``seed`` and faker version."""
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    faker = _faker(seed)
    makers = _MAKERS
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    while len(texts) < count:
        label = len(texts) % len(makers)
        text = makers[label](faker)
        # Two equal texts, one a member and one not, would blur the membership being measured.
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(label)
    return TextRecords(tuple(texts), np.asarray(labels, dtype=np.int64), CATEGORIES)


def records_digest(records: TextRecords) -> str:
    """SHA-256 over the records' texts and labels, in order."""
    digest = hashlib.sha256()
    for text, label in zip(records.texts, records.labels, strict=True):
        digest.update(f"{int(label)}\t{text}\n".encode())
    return digest.hexdigest()


# One generation per process (it takes under a second, but `train` and `audit` load the data
# several times); the records are immutable, the token arrays are made fresh by each caller.
@lru_cache(maxsize=1)
def embedded_records() -> TextRecords:
    """The embedded pool, checked against :data:`EMBEDDED_SHA256`."""
    return _pinned(generate_records(), EMBEDDED_SHA256)


@lru_cache(maxsize=1)
def public_records() -> TextRecords:
    """The public pool, checked against :data:`PUBLIC_SHA256` and disjoint from the embedded
    one (a public record equal to a private one would make pretraining see a member)."""
    records = _pinned(generate_records(EMBEDDED_POOL_SIZE, seed=PUBLIC_SEED), PUBLIC_SHA256)
    if set(records.texts) & set(embedded_records().texts):
        raise DataError("the public text records overlap the embedded ones; install the faker "
                        "version pinned in auditml's constraints.txt")
    return records


def _pinned(records: TextRecords, expected: str) -> TextRecords:
    digest = records_digest(records)
    if digest != expected:
        import faker

        raise DataError(
            f"the embedded text data generated by faker {faker.VERSION} differs from the data "
            "auditml ships (its generators changed); install the faker version pinned in "
            "auditml's constraints.txt"
        )
    return records


def _faker(seed: int) -> Any:
    try:
        from faker import Faker
    except ImportError:
        raise DataError(
            "data.dataset: text generates its data with faker, which is not installed; install "
            "auditml's text extra (pip install 'auditml[text]')"
        ) from None
    faker = Faker("en_US")
    faker.seed_instance(seed)
    return faker


def _day(faker: Any) -> str:
    return str(faker.date_between_dates(_FIRST_DAY, _LAST_DAY).isoformat())


def _ticket(faker: Any) -> str:
    name, email, phone = faker.name(), faker.email(), faker.phone_number()
    day, issue, number = _day(faker), faker.random_element(_ISSUES), faker.random_int(10000, 99999)
    quoted = issue[0].upper() + issue[1:]
    return str(faker.random_element((
        f"Ticket {number} from {name} ({email}): since {day} {issue}. Call back on {phone}.",
        f"Support request {number}, {day}: {name} says {issue}. Reach them at {phone} or {email}.",
        f'{name} wrote on {day}: "{quoted}." Reply to {email}, ticket {number}.',
    )))


def _appointment(faker: Any) -> str:
    name, phone, day = faker.name(), faker.phone_number(), _day(faker)
    time = f"{faker.random_int(8, 17):02d}:{faker.random_element(('00', '15', '30', '45'))}"
    service, staff = faker.random_element(_SERVICES), faker.last_name()
    return str(faker.random_element((
        f"Appointment: {name}, {service} with {staff} on {day} at {time}. Phone {phone}.",
        f"{name} booked a {service} for {day}, {time}, with {staff}; reminder to {phone}.",
        f"Reschedule {name}'s {service} to {day} at {time} (with {staff}); confirm on {phone}.",
    )))


def _order(faker: Any) -> str:
    name, email, day = faker.name(), faker.email(), _day(faker)
    count, product = faker.random_int(1, 5), faker.random_element(_PRODUCTS)
    total = f"${faker.random_int(5, 400)}.{faker.random_int(0, 99):02d}"
    address = f"{faker.street_address()}, {faker.city()}"
    number = faker.bothify("??-#####").upper()
    return str(faker.random_element((
        f"Order {number} by {name} on {day}: {count} x {product}, total {total}, ship to "
        f"{address}.",
        f"{name} ({email}) ordered {count} x {product} for {total} on {day}; order {number}.",
        f"Order {number} for {name}: {count} x {product} ({total}) to {address}; receipt to "
        f"{email}.",
    )))


def _account(faker: Any) -> str:
    name, day, number = faker.name(), _day(faker), faker.random_int(100000, 999999)
    change = faker.random_element(("e-mail address", "phone number", "billing address",
                                   "password", "plan"))
    if change == "password":
        return f"Account {number} ({name}): password reset on {day} from {faker.ipv4_public()}."
    if change == "plan":
        old_plan, new_plan = faker.random_elements(_PLANS, 2, unique=True)
        return (f"Account {number}: {name} moved from the {old_plan} plan to {new_plan} on {day}; "
                f"notify {faker.email()}.")
    value: Callable[[], str] = {
        "e-mail address": faker.email, "phone number": faker.phone_number,
        "billing address": faker.street_address,
    }[change]
    old, new = value(), value()
    return str(faker.random_element((
        f"Account {number}: {name} changed the {change} from {old} to {new} on {day}.",
        f"On {day} {name} (account {number}) updated their {change} to {new}.",
    )))


# In the order of CATEGORIES.
_MAKERS: tuple[Callable[[Any], str], ...] = (_ticket, _appointment, _order, _account)
