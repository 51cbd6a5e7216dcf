"""The Tablao Server: stores jobs and tasks, compiles jobs, leases tasks to Managers and serves the farm's state."""
