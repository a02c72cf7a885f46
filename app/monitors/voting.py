"""One decision per track: a quality-weighted vote of its best sightings' gallery matches."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Ballot:
    """One sighting's vote: the best subject found (or None below the threshold) and its weight."""

    subject_id: int | None
    similarity: float
    weight: float


@dataclass
class Decision:
    kind: str  # "recognized" or "unknown"
    subject_id: int | None
    similarity: float | None
    support: float  # share of the total weight behind the decision


def vote(ballots: list[Ballot]) -> Decision:
    """The subject with the largest total weight wins; ``unknown`` when the no-match ballots weigh more."""
    totals: dict[int | None, float] = {}
    for b in ballots:
        totals[b.subject_id] = totals.get(b.subject_id, 0.0) + max(b.weight, 1e-6)
    total = sum(totals.values())
    if not ballots:
        return Decision("unknown", None, None, 0.0)
    winner = max(totals, key=lambda k: (totals[k], k is not None))
    support = totals[winner] / total
    if winner is None:
        return Decision("unknown", None, None, round(support, 4))
    sims = [b for b in ballots if b.subject_id == winner]
    similarity = sum(b.similarity * b.weight for b in sims) / max(sum(b.weight for b in sims), 1e-6)
    return Decision("recognized", winner, round(similarity, 4), round(support, 4))
