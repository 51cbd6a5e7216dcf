"""pyqtgraph plots of the farm: per-worker utilisation and the farm's busy, idle and offline workers."""
