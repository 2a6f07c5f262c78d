"""The data lifecycle: retention (documents purged N days after they finished), erasure of one
person's data on request, archiving and deleting workflows.

Sits beside governance/: it reads and deletes what the engine wrote, freezes the KPI weeks it purges
(kpi/rollup.py), and is used by pages, the API and the worker's monitor.
"""
