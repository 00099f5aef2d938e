"""Cluster providers: `EksCluster` (AWS, in burrow.cluster.eks) and existing clusters (burrow.spi.KubeconfigCluster)."""
