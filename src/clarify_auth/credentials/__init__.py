"""Credentials: the file's model, where it is found, and reading it safely."""
