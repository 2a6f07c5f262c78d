"""KPI weeks and the histograms weekly facts keep.

Weeks are ISO weeks in the installation's time zone (TIME_ZONE, Europe/Rome by default): Monday 00:00
to the next Monday 00:00, local time, so a week around a change of summer time is 167 or 169 hours.
Cycle times are kept as histograms of 2 %-wide buckets, so weeks and workflows merge by adding counts.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, tzinfo

from django.utils import timezone

BINS = 101  # small-model confidence in hundredths, 0.00 … 1.00
HIST_BASE = 1.02  # cycle-time histogram buckets are 2 % wide: merged quantiles are within ~1 %


# --- ISO weeks in the installation's time zone ----------------------------------------------------

def week_zone() -> tzinfo:
    """The zone KPI weeks are cut in: the TIME_ZONE setting (Europe/Rome by default)."""
    return timezone.get_default_timezone()


def week_zone_name() -> str:
    return timezone.get_default_timezone_name()


def week_start_of(moment: datetime) -> date:
    local = moment.astimezone(week_zone()).date()
    return local - timedelta(days=local.weekday())


def week_bounds(monday: date) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in the week zone, as aware datetimes (DST weeks are 167 or 169 h)."""
    zone = week_zone()
    return (datetime.combine(monday, time(0), tzinfo=zone),
            datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone))


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str | None) -> date | None:
    """'2025-W14' → that ISO week's Monday; None when it is not a week, or one so close to the ends of the
    calendar (years 1 and 9999) that the weeks a page shows around it would leave the calendar."""
    try:
        year, week = (text or "").upper().split("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
    except (ValueError, TypeError):
        return None
    return monday if 2 <= monday.year <= 9998 else None


def current_week() -> date:
    return week_start_of(timezone.now())


def weeks_back(monday: date, count: int) -> list[date]:
    return [monday - timedelta(weeks=i) for i in range(count - 1, -1, -1)]


# --- quantiles and histograms ---------------------------------------------------------------------

def nearest_rank(sorted_values: list[float], q: float) -> float | None:
    """The q-quantile by the nearest-rank method: the ⌈q·n⌉-th smallest value."""
    if not sorted_values:
        return None
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def bucket(seconds: float) -> int:
    return 0 if seconds < HIST_BASE else int(math.log(seconds) / math.log(HIST_BASE))


def bucket_edges(k: int) -> tuple[float, float]:
    return (0.0 if k == 0 else HIST_BASE ** k), HIST_BASE ** (k + 1)


def hist_quantile(hist: dict[str, int], q: float) -> float | None:
    """Nearest-rank quantile read from a histogram: the geometric middle of the bucket holding it."""
    total = sum(hist.values())
    if not total:
        return None
    need = max(1, math.ceil(q * total))
    seen = 0
    for k in sorted(hist, key=int):
        seen += hist[k]
        if seen >= need:
            lo, hi = bucket_edges(int(k))
            return math.sqrt(lo * hi) if lo else hi / 2
    return None


def hist_share_below(hist: dict[str, int], limit: float) -> float | None:
    """Share of values ≤ limit; the one bucket straddling the limit is split linearly."""
    total = sum(hist.values())
    if not total:
        return None
    below = 0.0
    for k, count in hist.items():
        lo, hi = bucket_edges(int(k))
        if hi <= limit:
            below += count
        elif lo < limit:
            below += count * (limit - lo) / (hi - lo)
    return below / total


def conf_bin(confidence: float) -> int:
    # The epsilon keeps 0.29 in bin 29 although 0.29 * 100 is 28.999…
    return min(BINS - 1, max(0, int(confidence * 100 + 1e-9)))
