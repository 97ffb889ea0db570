"""JSON API under /api/v1: Bearer tokens, role checks, problem details.

`base` holds the blueprint and what every resource needs; each resource
(people, question sets, cadences, rounds, alerts) lives in its own module and hangs
its routes off `base.api_bp`; `openapi` serves the document assembled from
every resource's OPENAPI_PATHS, and importing it registers them all.
"""
