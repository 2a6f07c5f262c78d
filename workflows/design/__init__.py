"""Designing a workflow: its versions (versions.py), references into the registry that the pure
validator checks (references.py), the node config forms of the canvas (config_forms.py), export and
import documents (exchange.py), and the gallery of templates (gallery/)."""
