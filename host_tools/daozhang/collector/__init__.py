"""The collector: MQTT in, validated records stored exactly once, acks out after commit.

`ingest` is the pure storage step (usable without MQTT); `service` runs it behind a shared
subscription with group commit and manual PUBACKs.
"""
