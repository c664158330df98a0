"""The process around the bridge: garbage collection tuned for many
connections (gc_policy.py), logs kept readable and free of secrets
(log_flood.py, log_redaction.py), and OCPP_WORKERS' supervisor (workers.py).
"""
