"""The facts of one week of one workflow (`WeekFacts`), as a KpiWeek row stores them.

A week's facts are counts, sums and histograms (additive, so weeks and workflows merge by adding),
plus the exact median/p95 of that one week. Euros, energy and CO₂ are not stored: they are computed
at read time from the facts and the current baseline (workflows/kpi/readers.py), so editing the
baseline needs no rebuild. `WeekFacts.to_json()` is what a KpiWeek row stores and
`WeekFacts.from_json()` reads it back; a key missing from a row reads as zero or empty.
How a week's facts are counted from the ledger is rollup.py's.
"""

from __future__ import annotations

import operator
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from workflows.kpi.isoweeks import BINS, bucket, hist_quantile, nearest_rank

PATHS = ("small", "large", "human")
# bins[b] = [items, reviewed, small model right, decided by large, sent to a human, large reviewed, large right]
N, REVIEWED, SMALL_OK, LARGE, HUMAN, LARGE_REVIEWED, LARGE_OK = range(7)


# --- the facts of a week, as stored in KpiWeek.facts ----------------------------------------------
#
# Each class mirrors one part of the stored JSON; `to_json` writes exactly the keys (in the same order)
# and number types the rows have always held, `from_json` reads them, and `+` merges two weeks or two
# workflows. Counts stay ints and seconds, euros and tokens floats, in the JSON as in the objects.

def _add_dicts(a: dict, b: dict, add: Callable[[Any, Any], Any] = operator.add) -> dict:
    """Keys of both; values of keys in both added (a's keys first, as the stored merge always did)."""
    out = dict(a)
    for key, value in b.items():
        out[key] = add(out[key], value) if key in out else value
    return out


@dataclass
class PathCounts:
    """Completed documents (or a cascade's decisions) by the path that settled them."""

    small: int = 0
    large: int = 0
    human: int = 0

    def of(self, path: str) -> int:
        return getattr(self, path)

    def add(self, path: str, count: int = 1) -> None:
        setattr(self, path, getattr(self, path) + count)

    def total(self) -> int:
        return self.small + self.large + self.human

    def __add__(self, other: PathCounts) -> PathCounts:
        return PathCounts(*(self.of(p) + other.of(p) for p in PATHS))

    def to_json(self) -> dict[str, int]:
        return {p: self.of(p) for p in PATHS}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PathCounts:
        data = data or {}
        return cls(*(data.get(p, 0) for p in PATHS))


@dataclass
class Tally:
    """One quantity summed over the week's documents: `total` over every finished document (dead letters
    included), and per path over the completed ones. Floats for seconds, euros and tokens; ints for reviews."""

    total: float = 0.0
    small: float = 0.0
    large: float = 0.0
    human: float = 0.0

    @classmethod
    def counts(cls) -> Tally:
        return cls(0, 0, 0, 0)

    def of(self, path: str) -> float:
        """`path` is one of PATHS or "total"."""
        return getattr(self, path)

    def count(self, value: float, path: str | None = None) -> None:
        """Add one document's value to the total and, for a completed document, to its path."""
        self.total += value
        if path is not None:
            setattr(self, path, getattr(self, path) + value)

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_json(self) -> dict[str, float]:
        return {"total": self.total, **{p: self.of(p) for p in PATHS}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, zero: float = 0.0) -> Tally:
        data = data or {}
        return cls(data.get("total", zero), *(data.get(p, zero) for p in PATHS))


@dataclass
class Distribution:
    """Seconds per document: count, sum and a 2 % histogram (additive), and the exact median and p95 of a
    single week (None once weeks or workflows are merged: then the histogram gives them)."""

    n: int = 0
    median: float | None = None
    p95: float | None = None
    sum: float = 0
    hist: dict[str, int] = field(default_factory=dict)  # bucket number (as a JSON key) → values in it

    @classmethod
    def of(cls, values: list[float]) -> Distribution:
        values = sorted(values)
        hist: dict[str, int] = defaultdict(int)
        for v in values:
            hist[str(bucket(v))] += 1
        return cls(n=len(values), median=statistics.median(values) if values else None,
                   p95=nearest_rank(values, 0.95), sum=sum(values), hist=dict(hist))

    @property
    def exact(self) -> bool:
        return self.median is not None

    def quantiles(self) -> tuple[float | None, float | None]:
        """(median, p95): exact for one week, else read from the histogram."""
        if self.exact:
            return self.median, self.p95
        return hist_quantile(self.hist, 0.5), hist_quantile(self.hist, 0.95)

    def __add__(self, other: Distribution) -> Distribution:
        return Distribution(n=self.n + other.n, sum=self.sum + other.sum, hist=_add_dicts(self.hist, other.hist))

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "median": self.median, "p95": self.p95, "sum": self.sum, "hist": dict(self.hist)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Distribution:
        data = data or {}
        return cls(n=data.get("n", 0), median=data.get("median"), p95=data.get("p95"), sum=data.get("sum", 0),
                   hist=dict(data.get("hist") or {}))


@dataclass
class Hits:
    """Reviewed predictions and how many of them were right; stored as [n, correct]."""

    n: int = 0
    correct: int = 0

    def __add__(self, other: Hits) -> Hits:
        return Hits(self.n + other.n, self.correct + other.correct)

    def to_json(self) -> list[int]:
        return [self.n, self.correct]

    @classmethod
    def from_json(cls, data: list[int] | None) -> Hits:
        n, correct = data or (0, 0)
        return cls(n, correct)


@dataclass
class AccuracyFacts:
    """Reviewed labels against predictions: per node, and end to end per reviewed document."""

    nodes: dict[str, Hits] = field(default_factory=dict)
    e2e: Hits = field(default_factory=Hits)

    def __add__(self, other: AccuracyFacts) -> AccuracyFacts:
        return AccuracyFacts(_add_dicts(self.nodes, other.nodes), self.e2e + other.e2e)

    def to_json(self) -> dict[str, Any]:
        return {"nodes": {node: hits.to_json() for node, hits in self.nodes.items()}, "e2e": self.e2e.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AccuracyFacts:
        data = data or {}
        nodes = {node: Hits.from_json(v) for node, v in (data.get("nodes") or {}).items()}
        return cls(nodes, Hits.from_json(data.get("e2e")))


@dataclass
class LabelSetFacts:
    """Completed documents a model decided with a label set that no longer matches (the current production
    version of its model has other labels, or the label is not among the node's own labels): counted so
    that the automation and savings claims leave them out. `nodes` keeps, per node and model version,
    the documents and why ("production" or "node")."""

    documents: int = 0
    automated: int = 0  # of those, how many no person touched (the automation claim they would inflate)
    nodes: dict[str, dict[str, list]] = field(default_factory=dict)  # node → model ref → [documents, why]

    def __bool__(self) -> bool:
        return bool(self.documents)

    def __add__(self, other: LabelSetFacts) -> LabelSetFacts:
        nodes = {n: dict(refs) for n, refs in self.nodes.items()}
        for n, refs in other.nodes.items():
            mine = nodes.setdefault(n, {})
            for ref, (count, why) in refs.items():
                mine[ref] = [mine[ref][0] + count, why] if ref in mine else [count, why]
        return LabelSetFacts(self.documents + other.documents, self.automated + other.automated, nodes)

    def to_json(self) -> dict[str, Any]:
        return {"documents": self.documents, "automated": self.automated,
                "nodes": {n: {ref: list(v) for ref, v in refs.items()} for n, refs in self.nodes.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> LabelSetFacts:
        data = data or {}
        return cls(data.get("documents", 0), data.get("automated", 0),
                   {n: {ref: list(v) for ref, v in refs.items()} for n, refs in (data.get("nodes") or {}).items()})


def _empty_bins() -> list[list[int]]:
    return [[0] * 7 for _ in range(BINS)]


@dataclass
class CascadeFacts:
    """One cascade node's week: who decided, and per small-model confidence bin the counters N … LARGE_OK
    that the threshold what-if reads; plus the node's CPU and large-model calls."""

    funnel: PathCounts = field(default_factory=PathCounts)
    bins: list[list[int]] = field(default_factory=_empty_bins)
    llm_eur: float = 0.0
    llm_tokens: float = 0.0
    llm_calls: int = 0
    cpu: float = 0.0
    items: int = 0

    def __add__(self, other: CascadeFacts) -> CascadeFacts:
        bins = [[x + y for x, y in zip(a, b, strict=True)] for a, b in zip(self.bins, other.bins, strict=True)]
        return CascadeFacts(self.funnel + other.funnel, bins, self.llm_eur + other.llm_eur,
                            self.llm_tokens + other.llm_tokens, self.llm_calls + other.llm_calls, self.cpu + other.cpu,
                            self.items + other.items)

    def to_json(self) -> dict[str, Any]:
        return {"funnel": self.funnel.to_json(), "bins": [list(row) for row in self.bins], "llm_eur": self.llm_eur,
                "llm_tokens": self.llm_tokens, "llm_calls": self.llm_calls, "cpu": self.cpu, "items": self.items}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CascadeFacts:
        return cls(PathCounts.from_json(data.get("funnel")), [list(row) for row in data.get("bins") or _empty_bins()],
                   data.get("llm_eur", 0.0), data.get("llm_tokens", 0.0), data.get("llm_calls", 0),
                   data.get("cpu", 0.0), data.get("items", 0))


@dataclass
class WeekFacts:
    """Everything measured about one workflow's week (or a merge of several): see the module docstring."""

    docs: int = 0  # completed documents
    dead: int = 0  # documents given up as dead letters
    paths: PathCounts = field(default_factory=PathCounts)
    cpu: Tally = field(default_factory=Tally)  # CPU-seconds
    llm_eur: Tally = field(default_factory=Tally)  # large-model euros recorded in the ledger
    llm_tokens: Tally = field(default_factory=Tally)
    reviews: Tally = field(default_factory=Tally.counts)  # decided review tasks
    cycle: Distribution = field(default_factory=Distribution)  # received → completed
    answer: Distribution = field(default_factory=Distribution)  # received → first decision with an answer
    accuracy: AccuracyFacts = field(default_factory=AccuracyFacts)
    cascade: dict[str, CascadeFacts] = field(default_factory=dict)  # by cascade node
    models: dict[str, dict[str, int]] = field(default_factory=dict)  # node → model ref → decisions
    # Completed documents the large model answered, whichever path then settled them: in the ticket-triage
    # template a person checks every large-model answer, so the "large" path alone reads 0.
    large_used: int = 0
    # Spot checks per node: a random sample of what the model decided alone, judged by a person. The
    # unbiased accuracy (`accuracy` above holds the reviews of escalations, the unsure items).
    spot: AccuracyFacts = field(default_factory=AccuracyFacts)
    # Documents parked for a person in the week and still waiting: not automated, whatever comes next.
    waiting: int = 0
    label_sets: LabelSetFacts = field(default_factory=LabelSetFacts)

    def model_refs(self) -> list[str]:
        """Every model reference that decided something this week, sorted."""
        return sorted({ref for refs in self.models.values() for ref in refs})

    def __add__(self, other: WeekFacts) -> WeekFacts:
        return WeekFacts(
            docs=self.docs + other.docs, dead=self.dead + other.dead, paths=self.paths + other.paths,
            cpu=self.cpu + other.cpu, llm_eur=self.llm_eur + other.llm_eur,
            llm_tokens=self.llm_tokens + other.llm_tokens, reviews=self.reviews + other.reviews,
            cycle=self.cycle + other.cycle, answer=self.answer + other.answer,
            accuracy=self.accuracy + other.accuracy, cascade=_add_dicts(self.cascade, other.cascade),
            models=_add_dicts(self.models, other.models, add=_add_dicts), large_used=self.large_used + other.large_used,
            spot=self.spot + other.spot, waiting=self.waiting + other.waiting,
            label_sets=self.label_sets + other.label_sets)

    def to_json(self) -> dict[str, Any]:
        return {"docs": self.docs, "dead": self.dead, "paths": self.paths.to_json(), "cpu": self.cpu.to_json(),
                "llm_eur": self.llm_eur.to_json(), "llm_tokens": self.llm_tokens.to_json(),
                "reviews": self.reviews.to_json(), "cycle": self.cycle.to_json(), "answer": self.answer.to_json(),
                "accuracy": self.accuracy.to_json(), "cascade": {node: c.to_json() for node, c in self.cascade.items()},
                "models": {node: dict(refs) for node, refs in self.models.items()},
                # Written only when there is one, so that rows stored before it existed read back unchanged.
                **({"large_used": self.large_used} if self.large_used else {}),
                **({"spot": self.spot.to_json()} if self.spot.nodes else {}),
                **({"waiting": self.waiting} if self.waiting else {}),
                **({"label_sets": self.label_sets.to_json()} if self.label_sets else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WeekFacts:
        return cls(
            docs=data.get("docs", 0), dead=data.get("dead", 0), paths=PathCounts.from_json(data.get("paths")),
            cpu=Tally.from_json(data.get("cpu")), llm_eur=Tally.from_json(data.get("llm_eur")),
            llm_tokens=Tally.from_json(data.get("llm_tokens")), reviews=Tally.from_json(data.get("reviews"), zero=0),
            cycle=Distribution.from_json(data.get("cycle")), answer=Distribution.from_json(data.get("answer")),
            accuracy=AccuracyFacts.from_json(data.get("accuracy")),
            cascade={node: CascadeFacts.from_json(c) for node, c in (data.get("cascade") or {}).items()},
            models={node: dict(refs) for node, refs in (data.get("models") or {}).items()},
            large_used=data.get("large_used", 0), spot=AccuracyFacts.from_json(data.get("spot")),
            waiting=data.get("waiting", 0), label_sets=LabelSetFacts.from_json(data.get("label_sets")))

    def __getitem__(self, key: str) -> Any:
        """A top-level part by its stored JSON key (`facts["docs"]`), for code written against the stored dict."""
        return self.to_json()[key]


# --- merging --------------------------------------------------------------------------------------

def merge(a: WeekFacts | None, b: WeekFacts | None) -> WeekFacts | None:
    """Two weeks, or two workflows' weeks, added: counts, sums and histograms add; exact quantiles drop."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def merge_all(parts: list[WeekFacts]) -> WeekFacts | None:
    if len(parts) == 1:
        return parts[0]
    merged = None
    for part in parts:
        merged = merge(merged, part)
    return merged
