"""Several API processes on one machine (``serve --workers N``): which process leads (owns the
job pool, the scheduler and the sweeps), how jobs submitted to the others reach its pool, and
the run directory where the processes find each other."""
