"""oomlab: reproducible OOM-kill and swap experiments on Docker and Kubernetes."""

__version__ = "0.1.0"
