"""The ``requests`` adapter: authenticators, the session, token requests."""
