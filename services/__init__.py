"""Tablao's headless services: the Server, the Manager, the Worker and the wire protocol they share."""
