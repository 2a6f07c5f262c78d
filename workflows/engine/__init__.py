"""The executor: runs a workflow version's plan over items, shard by shard, crash-safe.

launch.py starts, feeds, cancels and finishes runs; tasks.py holds the Django Tasks entry points;
executor.py runs a shard micro-batch by micro-batch and ledger.py writes what each batch decided;
nodes/ holds what each node type does; state.py and stats.py are pure (an item's walk, NodeStats
arithmetic); observers.py is the after-commit hook the live sockets listen to; results.py is the read
side pages, API and exports share; monitor.py re-enqueues stale shards, flushes live runs and fires
schedules (schedules.py); intake.py reads files; staging.py keeps a previewed upload.
"""
