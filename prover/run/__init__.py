"""Running searches: the driver, its executors (in-process and on Ray), policy serving, run directories."""
