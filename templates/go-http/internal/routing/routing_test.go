package routing

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBaggageMember(t *testing.T) {
	cases := map[string]string{
		"":                                    "",
		"devloop-route=alice":                 "alice",
		"a=1, devloop-route = bob ;prop, c=3": "bob",
		"devloop-router=x":                    "",
	}
	for baggage, want := range cases {
		if got := BaggageMember(baggage, RouteBaggageKey); got != want {
			t.Errorf("BaggageMember(%q) = %q, want %q", baggage, got, want)
		}
	}
}

// A request arrives with a routing key in its baggage; the handler calls a downstream service with Client():
// the downstream request carries the baggage and the routing key header.
func TestRoutingContextIsForwardedAcrossAHop(t *testing.T) {
	var downstream http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downstream = r.Header.Clone()
	}))
	defer backend.Close()

	frontend := httptest.NewServer(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, backend.URL, nil)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := Client().Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})))
	defer frontend.Close()

	req, _ := http.NewRequest(http.MethodGet, frontend.URL, nil)
	req.Header.Set("Baggage", "tenant=acme,devloop-route=alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if got := downstream.Get(RouteHeader); got != "alice" {
		t.Errorf("%s = %q, want alice", RouteHeader, got)
	}
	if got := downstream.Get(BaggageHeader); got != "tenant=acme,devloop-route=alice" {
		t.Errorf("%s = %q", BaggageHeader, got)
	}
}

func TestNoRoutingContextSendsNoHeaders(t *testing.T) {
	var downstream http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downstream = r.Header.Clone()
	}))
	defer backend.Close()
	resp, err := Client().Get(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if downstream.Get(BaggageHeader) != "" || downstream.Get(RouteHeader) != "" {
		t.Fatalf("routing headers sent without a routing context: %v", downstream)
	}
}
