"""The Kubernetes backend: workspace pods through KubeSpawner, isolation as NetworkPolicies."""
