"""Governance: model import checks, promotions with evidence and four-eyes approval, audit."""
