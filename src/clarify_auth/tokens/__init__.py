"""Tokens: the token, its clock and lifecycle, the sans-IO exchange, and the stores.

Nothing here imports ``requests`` or ``httpx``.
"""
