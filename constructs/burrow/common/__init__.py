"""Common-layer constructs (AWS): state storage, container registries, network."""
