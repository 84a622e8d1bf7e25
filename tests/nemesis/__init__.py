"""Jepsen-style nemesis tests: real member processes in a network namespace
made for the run, partitions as nft rules in it, pauses and kills, clients
recording a history of appends and strong reads of a journal, and a checker.

``pytest tests/nemesis`` runs short fixed-seed rounds; ``python -m
tests.nemesis`` (``make nemesis``) soaks with new seeds.
"""
