"""The project's one scenario generator: receipts, device timelines and settlement files with
injected causes, and the ground truth to check correlation against. See README.md."""
