#!/usr/bin/env bash
# Builds oomlab's images on the local Docker engine, offline (no registry needed):
#
#   oomlab-base:bookworm    Debian bookworm minbase + python3-minimal (debootstrap + docker import)
#   oomlab-pybase:bookworm  Debian bookworm minbase + python3 + python3-venv (for the operator)
#   oomlab/memhog:dev       workloads/Dockerfile on oomlab-base:bookworm
#   oomlab/operator:dev     ./Dockerfile on oomlab-pybase:bookworm, if ./Dockerfile exists
#
# The base root filesystems are cached as tarballs under ${OOMLAB_CACHE}/images (made with
# hack/lib/rootfs.sh), so a rerun (or a rebuilt engine) imports them in seconds. Each image
# carries a label with a hash of its inputs (for the bases: suite, packages, hack/lib/rootfs.sh);
# an image whose inputs did not change is not rebuilt.
#
# The operator image is built with no network: its Dockerfile gets a build context holding the
# repository's files (tracked and untracked-but-not-ignored, as git sees them) plus a directory
# `wheels/` with wheels of the project and all its dependencies, made here with the host's pip.
# Install them with: pip install --no-index --find-links wheels oomlab
#
# Usage: hack/images.sh [base|pybase|memhog|operator|all]...   (default: all)
# Env:   OOMLAB_FORCE=1  rebuild even if the inputs did not change
#        OOMLAB_DEBIAN_MIRROR=URL  mirror for debootstrap (default: the one apt uses)
#        OOMLAB_OPERATOR_IMAGE=REF the operator image's name (default oomlab/operator:dev): a branch's
#                                  operator under its own tag, deployed by the e2e tier when it
#                                  names the same REF, leaves everyone else's :dev alone
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT="${OOMLAB_REPO_ROOT}"
IMG_CACHE="${OOMLAB_CACHE}/images"
LABEL="org.oomlab.inputs"

BASE_IMAGE=oomlab-base:bookworm
BASE_PACKAGES=(python3-minimal)
PYBASE_IMAGE=oomlab-pybase:bookworm
PYBASE_PACKAGES=(python3 python3-venv)
MEMHOG_IMAGE=oomlab/memhog:dev
OPERATOR_IMAGE="${OOMLAB_OPERATOR_IMAGE:-oomlab/operator:dev}"

# The classic builder: BuildKit would try to fetch a Dockerfile frontend image (no registry here).
export DOCKER_BUILDKIT=0

docker_() { oomlab_docker "$@"; }

sha() { sha256sum | cut -c1-16; }

# The input hash recorded on an image, empty if the image is missing.
image_inputs() {
  docker_ image inspect --format "{{ index .Config.Labels \"${LABEL}\" }}" "$1" 2>/dev/null || true
}

image_id() { docker_ image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

up_to_date() { # image hash
  [[ "${OOMLAB_FORCE:-0}" != 1 && "$(image_inputs "$1")" == "$2" ]]
}

# A minimal Debian root filesystem with extra packages, imported as an image.
build_rootfs_image() { # image package...
  local image="$1" hash tarball
  shift
  hash="$({ printf '%s %s %s\n' "${OOMLAB_DEBIAN_SUITE}" minbase "$*"; oomlab_lib_sums rootfs.sh; } | sha)"
  if up_to_date "${image}" "${hash}"; then
    oomlab_log "${image} is up to date (inputs ${hash})"
    return 0
  fi
  tarball="${IMG_CACHE}/rootfs-${OOMLAB_DEBIAN_SUITE}-${hash}.tar"
  if [[ ! -s "${tarball}" ]]; then
    oomlab_need_root "runs debootstrap"
    oomlab_rootfs_tarball "${tarball}" - "$@"
  fi
  oomlab_log "docker import ${tarball} ${image} ($(du -h "${tarball}" | cut -f1))"
  docker_ import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["/usr/bin/python3"]' \
    --change "LABEL ${LABEL}=${hash}" \
    --message "oomlab: debootstrap --variant=minbase --include=$(IFS=,; echo "$*") ${OOMLAB_DEBIAN_SUITE}" \
    "${tarball}" "${image}" >/dev/null
}

# The files under the current directory as git sees them (tracked, and untracked but not
# ignored), NUL-separated; never a virtualenv, build output or a deleted file.
repo_files() {
  git ls-files -z --cached --others --exclude-standard -- . \
    ':(exclude,glob)**/.venv/**' ':(exclude,glob)**/build/**' ':(exclude,glob)**/__pycache__/**' |
    while IFS= read -r -d '' f; do
      [[ -f "${f}" ]] && printf '%s\0' "${f}"
    done
}

# Hash of a directory's files as git sees them (tracked + untracked, not ignored), plus extras.
tree_hash() { # dir extra...
  local dir="$1"
  shift
  {
    printf '%s\n' "$@"
    (cd "${dir}" && repo_files | sort -z | xargs -0r sha256sum)
  } | sha
}

build_memhog() {
  local base_id hash
  base_id="$(image_id "${BASE_IMAGE}")"
  [[ -n "${base_id}" ]] || oomlab_die "${BASE_IMAGE} is missing: run hack/images.sh base"
  hash="$(tree_hash "${ROOT}/workloads" "${base_id}")"
  if up_to_date "${MEMHOG_IMAGE}" "${hash}"; then
    oomlab_log "${MEMHOG_IMAGE} is up to date (inputs ${hash})"
    return 0
  fi
  oomlab_log "building ${MEMHOG_IMAGE} from workloads/ on ${BASE_IMAGE}"
  oomlab_run "$(oomlab_docker_bin)" build --network none \
    --build-arg "BASE_IMAGE=${BASE_IMAGE}" --label "${LABEL}=${hash}" \
    -t "${MEMHOG_IMAGE}" "${ROOT}/workloads" >&2
}

# The operator image's inputs: with an allow-list .dockerignore (first rule `*`), only the
# Dockerfile, .dockerignore and the paths it lets in (`!path`); otherwise the whole repository.
operator_inputs_hash() { # base-image-id
  local ignore="${ROOT}/.dockerignore" allowed=()
  if [[ -f "${ignore}" && "$(grep -v -e '^#' -e '^[[:space:]]*$' "${ignore}" | head -n1)" == "*" ]]; then
    mapfile -t allowed < <(sed -n 's|^!\(.*\)$|\1|p' "${ignore}" | sed 's|/$||')
    {
      printf '%s\n' "$1"
      (cd "${ROOT}" && repo_files | sort -z | xargs -0r sha256sum |
        awk -v list="Dockerfile .dockerignore ${allowed[*]}" '
          BEGIN { n = split(list, a, " ") }
          { for (i = 1; i <= n; i++) if ($2 == a[i] || index($2, a[i] "/") == 1) { print; next } }')
    } | sha
  else
    tree_hash "${ROOT}" "$1"
  fi
}

# Wheels of the project and all its runtime dependencies, fetched with the host's pip for the
# base image's Python (bookworm: CPython 3.11, glibc 2.36, x86_64), whatever the host's Python.
PYBASE_PY_VERSION=3.11
PYBASE_GLIBC_MINOR=36
make_wheels() { # source-dir dest
  local src="$1" dest="$2" py wheel_cache req i
  py="$(command -v python3)"
  wheel_cache="${OOMLAB_CACHE}/wheels/cp${PYBASE_PY_VERSION/./}"
  mkdir -p "${wheel_cache}" "${dest}"
  local target=(--only-binary=:all: --implementation cp --python-version "${PYBASE_PY_VERSION}"
    --abi "cp${PYBASE_PY_VERSION/./}" --abi abi3 --abi none
    --platform any --platform linux_x86_64
    --platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
  for ((i = 5; i <= PYBASE_GLIBC_MINOR; i++)); do
    target+=(--platform "manylinux_2_${i}_x86_64")
  done
  oomlab_log "pip wheel: the project (pure Python), from ${src}"
  req="$(cd "${src}" && "${py}" -m pip wheel --quiet --no-deps --wheel-dir "${dest}" . >&2 &&
    ls "${dest}")"
  oomlab_log "project wheel: ${req}"
  oomlab_log "pip download: its dependencies for CPython ${PYBASE_PY_VERSION} (cache ${wheel_cache})"
  "${py}" -m pip download --quiet "${target[@]}" --find-links "${wheel_cache}" \
    --dest "${wheel_cache}" "${dest}/${req}" >&2
  # Into the context: exactly what the project needs, resolved offline against the cache.
  "${py}" -m pip download --quiet --no-index "${target[@]}" --find-links "${wheel_cache}" \
    --find-links "${dest}" --dest "${dest}" "${dest}/${req}" >&2
  oomlab_log "wheels/: $(find "${dest}" -name '*.whl' | wc -l) wheels"
}

build_operator() {
  if [[ ! -f "${ROOT}/Dockerfile" ]]; then
    oomlab_log "no ./Dockerfile: skipping ${OPERATOR_IMAGE}"
    return 0
  fi
  local base_id hash ctx
  base_id="$(image_id "${PYBASE_IMAGE}")"
  [[ -n "${base_id}" ]] || oomlab_die "${PYBASE_IMAGE} is missing: run hack/images.sh pybase"
  hash="$(operator_inputs_hash "${base_id}")"
  if up_to_date "${OPERATOR_IMAGE}" "${hash}"; then
    oomlab_log "${OPERATOR_IMAGE} is up to date (inputs ${hash})"
    return 0
  fi
  mkdir -p "${OOMLAB_CACHE}"
  ctx="$(mktemp -d "${OOMLAB_CACHE}/operator-context.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: ctx is local
  trap "rm -rf '${ctx}'" EXIT
  oomlab_log "assembling the build context in ${ctx}"
  (cd "${ROOT}" && repo_files | xargs -0r cp --parents -p -t "${ctx}")
  # Built from the copy, so that nothing (egg-info, build/) is written into the work tree.
  make_wheels "${ctx}" "${ctx}/wheels"
  oomlab_log "building ${OPERATOR_IMAGE} from ./Dockerfile on ${PYBASE_IMAGE} (no network)"
  oomlab_run "$(oomlab_docker_bin)" build --network none \
    --build-arg "BASE_IMAGE=${PYBASE_IMAGE}" --label "${LABEL}=${hash}" \
    -t "${OPERATOR_IMAGE}" -f "${ctx}/Dockerfile" "${ctx}" >&2
  rm -rf "${ctx}"
  trap - EXIT
}

main() {
  local targets=("$@")
  [[ ${#targets[@]} -gt 0 ]] || targets=(all)
  oomlab_docker_ok || oomlab_die "no Docker engine answers: run hack/docker-up.sh first"
  local t
  for t in "${targets[@]}"; do
    case "${t}" in
      base) build_rootfs_image "${BASE_IMAGE}" "${BASE_PACKAGES[@]}" ;;
      pybase) build_rootfs_image "${PYBASE_IMAGE}" "${PYBASE_PACKAGES[@]}" ;;
      memhog) build_memhog ;;
      operator) build_operator ;;
      all)
        build_rootfs_image "${BASE_IMAGE}" "${BASE_PACKAGES[@]}"
        build_memhog
        if [[ -f "${ROOT}/Dockerfile" ]]; then
          build_rootfs_image "${PYBASE_IMAGE}" "${PYBASE_PACKAGES[@]}"
          build_operator
        fi
        ;;
      *) oomlab_die "unknown target ${t} (base|pybase|memhog|operator|all)" ;;
    esac
  done
  oomlab_log "images: $(docker_ images --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
    grep -E '^oomlab' | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
}

main "$@"
