package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"{{module}}/internal/metrics"
)

func start(t *testing.T) (*Server, *metrics.Metrics, *httptest.Server) {
	t.Helper()
	m := metrics.New()
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	ts := httptest.NewServer(s.Handler)
	t.Cleanup(ts.Close)
	return s, m, ts
}

func get(t *testing.T, url string, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestHello(t *testing.T) {
	_, _, ts := start(t)
	status, body := get(t, ts.URL+"/v1/hello?name=Ada", http.Header{"X-Devloop-Route": {"alice"}})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp HelloResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Message != "Hello, Ada!" || resp.Route != "alice" {
		t.Fatalf("response = %+v", resp)
	}
}

func TestHealthzFailsWhileDraining(t *testing.T) {
	s, _, ts := start(t)
	if status, body := get(t, ts.URL+"/healthz", nil); status != http.StatusOK {
		t.Fatalf("healthz = %d %s", status, body)
	}
	s.Drain()
	if status, _ := get(t, ts.URL+"/healthz", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("healthz while draining = %d, want 503", status)
	}
}

func TestRequestsAreCountedByRoutePattern(t *testing.T) {
	_, m, ts := start(t)
	get(t, ts.URL+"/v1/hello?name=x", nil)
	get(t, ts.URL+"/nowhere", nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`http_server_requests_total{code="200",method="GET",route="GET /v1/hello"} 1`,
		`http_server_requests_total{code="404",method="GET",route="unmatched"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
