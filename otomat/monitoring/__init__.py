"""Monitoring: instance and platform health, alert rules, incidents, uptime history, status page."""
