"""The main script of every program in the PyInstaller bundle; app/launcher.py picks the command by program name."""

import sys

from app.launcher import run

if __name__ == "__main__":
    sys.exit(run())
