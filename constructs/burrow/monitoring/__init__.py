"""Monitoring built from code: ServiceMonitors, PrometheusRules, the Grafana dashboard, alert routing."""
