"""Node handlers: what each node type does to a micro-batch.

base.py: the interface and registry; flow.py: sources, route, review, table and export sinks;
webhook.py: the webhook sink, to registered destinations only; models.py: small models; llm.py: the
large model and the cascade; loader.py: from a registry version to a ready runtime.
"""
