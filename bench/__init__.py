"""Benchmarks of the segmentation service: ``python -m bench`` (``make bench``).

Every figure is measured against a baseline taken in the same run, on the same machine and
data, so the table reports ratios rather than absolute times that depend on the machine.
"""
