"""The desktop app's models: the plain client store of the farm's state (`store.py`, `collection.py`, no Qt) and
the Qt item models over it (`table.py`, `columns.py`, `farm_models.py`) with the sync that feeds it (`sync.py`).
"""
