"""Deterministic, Stripe-looking ids drawn from a seeded random generator."""

from __future__ import annotations

import random

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class IdMaker:
    """Random ids with Stripe's prefixes (``cus_``, ``sub_1``, ``evt_1``...), from one RNG."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def make(self, prefix: str, length: int) -> str:
        return prefix + "".join(self._rng.choices(ALPHABET, k=length))


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
