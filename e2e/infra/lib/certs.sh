# Cluster PKI with openssl: one CA, serving certs for the API server and kubelet, client certs per component
# (identity = CN, groups = O, as the Node and RBAC authorizers expect), the service-account key pair, kubeconfigs.
# shellcheck shell=bash

APISERVER_KUBELET_CLIENT_CN=kube-apiserver-kubelet-client

# new_ca <name> <CN>
new_ca() {
  [ -f "$PKI/$1.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null || die "openssl could not create the CA $1"
}

# issue_cert <name> <subject> <extendedKeyUsage> [subjectAltName]; signed by the CA named in $ISSUER (default ca).
issue_cert() {
  local name=$1 subject=$2 usage=$3 san=${4:-} ca=${ISSUER:-ca}
  [ -f "$PKI/$name.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subject" 2>/dev/null \
    | openssl x509 -req -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial -days 3650 -sha256 \
      -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null || die "openssl could not issue $name"
  rm -f "$ext"
}

# write_kubeconfig <name> <cert name>
write_kubeconfig() {
  local name=$1 cert=$2
  write_file "$KUBECONFIGS/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: devloop
  cluster:
    certificate-authority: $PKI/ca.crt
    server: https://$NODE_IP:6443
users:
- name: $name
  user:
    client-certificate: $PKI/$cert.crt
    client-key: $PKI/$cert.key
contexts:
- name: devloop
  context:
    cluster: devloop
    user: $name
current-context: devloop
EOF
}

up_certs() {
  mkdir -p "$PKI" "$KUBECONFIGS"
  chmod 700 "$PKI"
  new_ca ca devloop-infra-ca
  # The aggregation layer's front proxy gets its own CA, as kubeadm sets it up.
  new_ca front-proxy-ca devloop-infra-front-proxy-ca
  ISSUER=front-proxy-ca issue_cert front-proxy-client "/CN=front-proxy-client" clientAuth
  issue_cert apiserver "/CN=kube-apiserver" serverAuth \
    "IP:$NODE_IP,IP:127.0.0.1,IP:$KUBERNETES_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
  issue_cert apiserver-kubelet-client "/CN=$APISERVER_KUBELET_CLIENT_CN" clientAuth
  issue_cert kubelet-serving "/CN=system:node:$NODE_NAME/O=system:nodes" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  issue_cert admin "/CN=devloop-admin/O=system:masters" clientAuth
  issue_cert controller-manager "/CN=system:kube-controller-manager" clientAuth
  issue_cert scheduler "/CN=system:kube-scheduler" clientAuth
  issue_cert kubelet "/CN=system:node:$NODE_NAME/O=system:nodes" clientAuth
  issue_cert kube-proxy "/CN=system:kube-proxy" clientAuth
  if [ ! -f "$PKI/service-account.key" ]; then
    openssl genrsa -out "$PKI/service-account.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/service-account.key" -pubout -out "$PKI/service-account.pub" 2>/dev/null
  fi
  write_kubeconfig admin admin
  write_kubeconfig controller-manager controller-manager
  write_kubeconfig scheduler scheduler
  write_kubeconfig kubelet kubelet
  write_kubeconfig kube-proxy kube-proxy
}
