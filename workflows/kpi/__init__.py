"""Business KPIs of the workflows, from the ledger to the weekly pack a business owner signs.

- isoweeks.py: ISO weeks in the installation's time zone (TIME_ZONE, Europe/Rome by default), and
  the histograms and confidence bins weekly facts keep.
- facts.py: what a week's facts are (`WeekFacts`, stored as JSON in KpiWeek rows) and how two merge.
- rollup.py: counting a week's facts from the ledger, and keeping the KpiWeek rows fresh.
- readers.py: one reader function per KPI over those facts and the baseline; who sees which workflow's
  KPIs; everything a KPI page shows (`dashboard`).
- baseline.py: saving the baseline a business owner types in (page and API alike), audited.
- pack.py: the weekly review pack, built from the readers; signing it (page and API alike); its CSV.

Nothing is imported here, so that importing one module does not load the others.
"""
