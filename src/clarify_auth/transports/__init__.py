"""One adapter per HTTP library around the token lifecycle."""
