# shellcheck shell=bash
# Part of hack/local-cluster.sh (sourced; runs nothing): the cluster's certificates and
# kubeconfigs, made with openssl (offline) under ${PKI}. Each file is made once and kept.

gen_ca() {
  [[ -f "${PKI}/ca.crt" ]] && return
  log "pki: creating the cluster CA"
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
    -keyout "${PKI}/ca.key" -out "${PKI}/ca.crt" -subj "/CN=oomlab-local-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

gen_cert() { # name subject usage(server|client|both) [subjectAltName]
  local name="$1" subj="$2" usage="$3" san="${4:-}" eku
  [[ -f "${PKI}/${name}.crt" ]] && return
  case "${usage}" in
    server) eku=serverAuth ;;
    client) eku=clientAuth ;;
    both) eku=serverAuth,clientAuth ;;
  esac
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=${eku}"
    [[ -n "${san}" ]] && echo "subjectAltName=${san}"
  } >"${PKI}/${name}.ext"
  openssl req -new -nodes -newkey rsa:2048 -keyout "${PKI}/${name}.key" -out "${PKI}/${name}.csr" -subj "${subj}" 2>/dev/null
  openssl x509 -req -sha256 -days 365 -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" \
    -CAcreateserial -out "${PKI}/${name}.crt" -extfile "${PKI}/${name}.ext" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

write_kubeconfig() { # file user cert-name
  local file="$1" user="$2" cert="$3"
  [[ -f "${file}" ]] && return
  cat >"${file}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: oomlab
  cluster:
    server: https://${OOMLAB_NODE_IP}:${OOMLAB_API_PORT}
    certificate-authority-data: $(base64 -w0 "${PKI}/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 "${PKI}/${cert}.crt")
    client-key-data: $(base64 -w0 "${PKI}/${cert}.key")
contexts:
- name: oomlab
  context: {cluster: oomlab, user: ${user}}
current-context: oomlab
EOF
  chmod 600 "${file}"
}

make_pki() {
  mkdir -p "${PKI}"
  chmod 700 "${PKI}"
  gen_ca
  gen_cert kube-apiserver "/CN=kube-apiserver" server \
    "IP:${OOMLAB_NODE_IP},IP:${OOMLAB_API_SERVICE_IP},IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  gen_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  gen_cert admin "/O=system:masters/CN=oomlab-admin" client
  gen_cert kube-controller-manager "/CN=system:kube-controller-manager" client
  gen_cert kube-scheduler "/CN=system:kube-scheduler" client
  gen_cert kube-proxy "/CN=system:kube-proxy" client
  gen_cert kubelet-client "/O=system:nodes/CN=system:node:${OOMLAB_NODE_NAME}" client
  gen_cert kubelet-server "/CN=${OOMLAB_NODE_NAME}" server "IP:${OOMLAB_NODE_IP},DNS:${OOMLAB_NODE_NAME}"
  if [[ ! -f "${PKI}/sa.key" ]]; then
    log "pki: creating the service-account signing key"
    openssl genrsa -out "${PKI}/sa.key" 2048 2>/dev/null
    openssl rsa -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
  fi
  chmod 600 "${PKI}"/*.key
  write_kubeconfig "${KUBECONFIG_ADMIN}" oomlab-admin admin
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/scheduler.kubeconfig" system:kube-scheduler kube-scheduler
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/kubelet.kubeconfig" "system:node:${OOMLAB_NODE_NAME}" kubelet-client
}
