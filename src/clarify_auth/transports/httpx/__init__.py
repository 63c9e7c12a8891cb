"""The ``httpx`` adapter: the auth flow, the clients, their network checks."""
