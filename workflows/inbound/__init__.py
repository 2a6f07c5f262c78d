"""Channels that feed a workflow on their own: mailboxes polled by the workers and signed inbound
webhooks that third-party systems call with their own JSON. Both hand items to the engine's intake
(engine/launch.py), like pages and the REST API do."""
