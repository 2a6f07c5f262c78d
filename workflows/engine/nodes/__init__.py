"""Node handlers: what each node type does to a micro-batch (base.py: the interface and registry;
flow.py: sources, route, review, sinks; models.py: small models; llm.py: large model and cascade;
loader.py: from a registry version to a ready runtime)."""
