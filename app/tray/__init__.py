"""tray."""
