"""Examples that ship with mosaik: `kv` backs `mosaik demo`; `jobs` is a job
queue on the collections (``python -m mosaik.examples.jobs``)."""
