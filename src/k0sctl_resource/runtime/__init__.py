"""What every layer uses: the error type, the log on stderr, redaction of secrets, private files."""
