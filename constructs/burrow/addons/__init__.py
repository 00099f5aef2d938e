"""Cluster add-ons: each one a `ClusterAddOn` with one `deploy` step, indifferent to the cluster provider."""
