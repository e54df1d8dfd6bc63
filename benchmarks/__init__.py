"""Benchmarks of the asyncreply client against the reference server (loopback only).

Run them with ``make bench`` or one by one (``python -m benchmarks.detection_lag [--quick]``);
each prints a table and writes JSON to ``benchmarks/results/<name>.json``. The server always
runs in a separate process, so the client's CPU time is measured apart from the server's.
"""
