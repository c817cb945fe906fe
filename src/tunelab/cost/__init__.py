"""Cost planning: token counts, memory per device, FLOPs and time, prices (a data file with sources and dates), TCO."""
