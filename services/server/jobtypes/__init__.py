"""Job types: pure compilers from a job's validated settings to its tasks. No database, no HTTP."""
