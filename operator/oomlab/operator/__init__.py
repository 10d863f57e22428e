"""The OOMExperiment operator. kopf runs :mod:`oomlab.operator.handlers`; the other modules are
the pure pieces it assembles the status from."""
