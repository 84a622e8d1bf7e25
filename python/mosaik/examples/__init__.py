"""Example state machines that ship with mosaik; `kv` backs `mosaik demo`."""
