"""Where tokens are kept beyond the process: the protocol, files, Redis."""
