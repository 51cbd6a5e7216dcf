"""The Tablao Worker: asks its Manager for tasks, runs their commands and reports back through a durable buffer.

It knows the Manager only through the protocol (`services.protocol`): the loop (`agent.py`), the command runners
(`runners/`), the update queue (`buffer.py`) and utilisation sampling (`sampler.py`).
"""
