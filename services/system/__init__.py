"""Tablao as an operating-system service: systemd units and launchd plists for the Server, Managers and Workers."""
