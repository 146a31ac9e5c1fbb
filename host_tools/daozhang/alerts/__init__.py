"""Alerts for fleet and money: rules from a TOML file evaluated from the store, state kept in
the store (one message when an alert fires, one when it resolves), delivered to WeCom,
DingTalk and Feishu group bots and generic JSON webhooks (README.md)."""
