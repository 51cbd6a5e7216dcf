"""Wire models, state enums and typed HTTP clients shared by every Tablao component.

This package imports no other Tablao package, no Qt and no SQLAlchemy.
"""

API_PREFIX = "/api/v1"
VERSION = "0.1.0"
