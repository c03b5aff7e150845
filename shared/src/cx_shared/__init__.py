"""The ClusterXchange shared kit: contracts and plumbing written once for every service."""
