"""The executor: runs a workflow version's plan over items, shard by shard, crash-safe.

state.py and stats.py are pure; handlers.py defines the node-handler interface; executor.py runs a
shard; launch.py starts runs and resumes items; tasks.py holds the Django Tasks entry points;
monitor.py re-enqueues stale shards, flushes live runs and fires schedules; intake.py reads files.
"""
