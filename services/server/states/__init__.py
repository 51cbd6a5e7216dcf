"""The Server's state machines for jobs and tasks: transition tables, and nothing else."""
