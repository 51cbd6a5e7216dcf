"""The local farm: a Server, a Manager and workers on this machine as supervised child processes.

`tablao all-in-one` and the desktop app both run it through this package: one data-directory layout
(`layout`), one way to start a child that dies with its supervisor (`lifeline`, `supervisor`), one record of
what a run started (`records`), and the farm itself (`farm`). It knows the Server, Manager and Worker only as
processes and over HTTP, never by importing them.
"""
