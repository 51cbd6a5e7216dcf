"""Wire models, state enums and typed HTTP clients shared by every Tablao component.

This package imports no other Tablao package, no Qt and no SQLAlchemy.
"""

API_PREFIX = "/api/v1"
VERSION = "0.1.0"
EXIT_INTERRUPTED = 128 + 2  # a command ended by Ctrl-C exits as a shell reports a program ended by SIGINT
