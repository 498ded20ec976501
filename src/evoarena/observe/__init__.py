"""The operator's view: run history, the HTML report, the status file, metrics, health, webhooks."""
