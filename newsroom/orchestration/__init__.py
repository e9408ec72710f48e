"""Newsroom's Prefect infrastructure: what Newsroom needs from Prefect beyond its public API.

For now this is :mod:`newsroom.orchestration.prefect_internals`, the one module that names
Prefect's private symbols; more of the Prefect plumbing moves here later.
"""
