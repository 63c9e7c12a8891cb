"""The ``clarify-auth`` command line."""
