"""The faces: the ``oomlab`` command (:mod:`oomlab.cli.main`), its report and plots."""
