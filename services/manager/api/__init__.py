"""The Manager's HTTP API: the Worker API and the clients' task logs."""
