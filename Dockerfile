# The oomlab operator image (kopf). Two stages on the same base image, so the virtualenv built in
# the first points at the same python3 in the second.
#
# With a registry:  docker build -t oomlab/operator:dev .
#                   (BASE_IMAGE defaults to python:3.12-slim; pip installs from PyPI)
# Offline (here):   hack/images.sh operator
#                   (BASE_IMAGE=oomlab-pybase:bookworm, Debian python3 + python3-venv; the build
#                   context carries wheels/ with the project and its dependencies, and the build
#                   runs with --network none)
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
ENV VENV=/opt/oomlab/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# .dockerignore lets in only what the package needs: pyproject.toml, README.md, operator/ and,
# when hack/images.sh made it, wheels/.
COPY . /src
RUN python3 -m venv "${VENV}" \
 && if ls /src/wheels/*.whl >/dev/null 2>&1; then \
      "${VENV}/bin/pip" install --no-index --find-links /src/wheels oomlab; \
    else \
      "${VENV}/bin/pip" install /src; \
    fi \
 && "${VENV}/bin/python" -c "import kopf, oomlab; print('oomlab', oomlab.__file__)" \
 && "${VENV}/bin/kopf" --help >/dev/null

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="oomlab operator" \
      org.opencontainers.image.description="kopf operator for OOMExperiment resources (oomlab.dev)"
ENV VENV=/opt/oomlab/venv
ENV PATH="${VENV}/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    USER=oomlab
# MALLOC_ARENA_MAX: glibc's arenas shared by all threads, not one per thread (see
# oomlab.operator.memory and manifests/operator/deployment.yaml).
# USER: kopf names itself after getpass.getuser(), which fails for a uid with no passwd entry.
COPY --from=build /opt/oomlab/venv /opt/oomlab/venv
# Non-root, numeric so that runAsNonRoot can verify it without an /etc/passwd entry.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
# Same command as manifests/operator/deployment.yaml: standalone kopf (no peering objects),
# every namespace, liveness endpoint on :8080/healthz.
ENTRYPOINT ["kopf", "run", "--standalone", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz", "-m", "oomlab.operator.handlers"]
