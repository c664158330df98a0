"""Simulated charging stations for trials, tests and benchmarks.

`core.py` holds what they share (options, the runner); `v16.py` simulates an
OCPP 1.6J charge point and `v2.py` an OCPP 2.0.1 or 2.1 station. Run one with
`python -m connector.simulator` (see `__main__.py`).
"""
