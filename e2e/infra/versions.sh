# Versions of everything e2e/infra builds or runs. Sourced by infra.sh and build-kubernetes.sh.
K8S_VERSION=${K8S_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
ISTIO_API_VERSION=${ISTIO_API_VERSION:-v1.31.1}
PAUSE_TAG=${PAUSE_TAG:-3.10-devloop}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
KIND_VERSION=${KIND_VERSION:-v0.33.0}
# crictl for the kind node (kind load and kind export logs use it); v1.35.0 is refused by the module proxy.
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}
# istio.io/istio is published on the Go module proxy only as pseudo-versions of its main branch.
ISTIO_VERSION=${ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}
