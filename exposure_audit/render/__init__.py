"""Renderers: a report (or a diff of two) as text, in every output format."""
