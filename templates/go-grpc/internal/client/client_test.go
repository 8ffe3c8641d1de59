package client

import "testing"

func TestTarget(t *testing.T) {
	for _, c := range []struct {
		addr string
		xds  bool
		want string
	}{
		{"orders.shop.svc.cluster.local:8080", true, "xds:///orders.shop.svc.cluster.local:8080"},
		{"orders:8080", false, "dns:///orders:8080"},
		{"passthrough:///10.0.0.1:8080", true, "passthrough:///10.0.0.1:8080"},
		{"xds:///orders.shop.svc.cluster.local:8080", false, "xds:///orders.shop.svc.cluster.local:8080"},
	} {
		if got := Target(c.addr, c.xds); got != c.want {
			t.Errorf("Target(%q, %v) = %q, want %q", c.addr, c.xds, got, c.want)
		}
	}
}

func TestXDSEnabled(t *testing.T) {
	env := func(vars map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}
	if XDSEnabled(env(nil)) {
		t.Error("enabled without a bootstrap")
	}
	if XDSEnabled(env(map[string]string{"GRPC_XDS_BOOTSTRAP": ""})) {
		t.Error("enabled by an empty GRPC_XDS_BOOTSTRAP")
	}
	if !XDSEnabled(env(map[string]string{"GRPC_XDS_BOOTSTRAP": "/etc/xds/bootstrap.json"})) {
		t.Error("not enabled by GRPC_XDS_BOOTSTRAP")
	}
	if !XDSEnabled(env(map[string]string{"GRPC_XDS_BOOTSTRAP_CONFIG": "{}"})) {
		t.Error("not enabled by GRPC_XDS_BOOTSTRAP_CONFIG")
	}
}
