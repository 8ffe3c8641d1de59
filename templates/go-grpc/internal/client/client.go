// Package client dials the services this one calls. When GRPC_XDS_BOOTSTRAP (or its inline form,
// GRPC_XDS_BOOTSTRAP_CONFIG) is set, targets resolve through xDS: Istio's proxyless gRPC, where istiod sends the
// endpoints and the mesh's routes (VirtualServices, so also per-developer routes by routing key) straight to this
// process, without a sidecar. Otherwise targets resolve through DNS. Every connection forwards the routing context.
package client

import (
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS balancers

	"{{module}}/internal/routing"
)

// XDSEnabled reports whether an xDS bootstrap is configured; lookup is os.LookupEnv in main.
func XDSEnabled(lookup func(string) (string, bool)) bool {
	for _, name := range []string{"GRPC_XDS_BOOTSTRAP", "GRPC_XDS_BOOTSTRAP_CONFIG"} {
		if v, ok := lookup(name); ok && v != "" {
			return true
		}
	}
	return false
}

// Target is the gRPC target for addr ("host:port"): xds:///host:port with xDS, dns:///host:port without. In the
// mesh, use the Service's full name (orders.shop.svc.cluster.local:8080), the name istiod knows it by. An addr
// that already has a scheme ("dns:///…", "xds:///…", "passthrough:///…") is used as it is.
func Target(addr string, xds bool) string {
	if strings.Contains(addr, ":///") {
		return addr
	}
	if xds {
		return "xds:///" + addr
	}
	return "dns:///" + addr
}

// Dial returns a connection to addr that forwards the routing context of each call (routing.DialOptions).
// Plaintext, as proxyless clients talk unless istiod hands out mTLS certificates.
func Dial(addr string, xds bool, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, routing.DialOptions()...)
	return grpc.NewClient(Target(addr, xds), append(all, opts...)...)
}
