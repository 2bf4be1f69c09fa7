"""When two claimed values are "near-identical" (the near-duplicate detector of the
screening step, docs/design/defence.md).

Values are compared after normalization: text is case-folded, every run of characters
that are not letters or digits becomes one space, and the ends are trimmed (so
``"Rare!"``, ``"rare"`` and ``"  RARE  "`` are one value); numbers, booleans and
references compare by their value key. Two texts of at least ``MINHASH_MIN_CHARS``
normalized characters that still differ are near-identical when the MinHash estimate
(``datasketch``, ``MINHASH_PERMUTATIONS`` permutations, seed 1: deterministic) of the
Jaccard similarity of their character 3-gram sets reaches the configured threshold.
MinHashes are computed only when a text meets an earlier one of the same agent on the
same key, so the common write pays nothing for them; ``datasketch`` (and numpy) is
imported on the first such comparison.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from stemedb.model.records import ObjectValue
from stemedb.store.claim_keys import value_key

if TYPE_CHECKING:
    from datasketch import MinHash

MINHASH_MIN_CHARS: Final = 24
MINHASH_PERMUTATIONS: Final = 64
SHINGLE_CHARS: Final = 3
_NOT_WORD: Final = re.compile(r"[\W_]+")


def normalized_key(key: str) -> str:
    """A value key (``store.claim_keys.value_key``) as the detectors compare it: the
    text of a ``text:`` key normalized, any other key as it is."""
    if key.startswith("text:"):
        return "text:" + _NOT_WORD.sub(" ", key[5:].casefold()).strip()
    return key


def normalized_value(obj: ObjectValue) -> str:
    """The value as the detectors compare it: normalized text, else the value key."""
    return normalized_key(value_key(obj))


class SeenValue:
    """A normalized value and, once asked for, its MinHash."""

    __slots__ = ("_minhash", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._minhash: MinHash | None = None

    def minhash(self) -> MinHash:
        if self._minhash is None:
            from datasketch import MinHash  # numpy: only on the first comparison

            digest = MinHash(num_perm=MINHASH_PERMUTATIONS, seed=1)
            body = self.text
            digest.update_batch(
                [body[i : i + SHINGLE_CHARS].encode() for i in range(len(body) - 2)]
            )
            self._minhash = digest
        return self._minhash

    def near(self, other: SeenValue, similarity: float) -> bool:
        """Equal after normalization, or two long texts at least ``similarity`` alike."""
        if self.text == other.text:
            return True
        if not (self.text.startswith("text:") and other.text.startswith("text:")):
            return False
        if min(len(self.text), len(other.text)) < MINHASH_MIN_CHARS + len("text:"):
            return False
        return float(self.minhash().jaccard(other.minhash())) >= similarity
