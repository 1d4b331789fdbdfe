"""Scale-out on a Dask cluster: real scheduler and workers on loopback."""
