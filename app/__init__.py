"""Tablao's desktop side: the command-line entry point, the Qt controller app and the tray worker."""
