// Package server assembles the HTTP API: the routes, /healthz and the middleware.
package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"{{module}}/internal/metrics"
	"{{module}}/internal/routing"
)

// Server is the API handler with its readiness state, which the caller flips on shutdown.
type Server struct {
	Handler  http.Handler
	draining atomic.Bool
}

// New builds the handler: routing context → metrics → request log → routes.
func New(logger *slog.Logger, m *metrics.Metrics) *Server {
	s := &Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/hello", hello)
	mux.HandleFunc("GET /healthz", s.healthz)
	s.Handler = routing.Middleware(m.Middleware(logRequests(logger, mux)))
	return s
}

// Drain makes /healthz answer 503 so that readiness fails and the pod leaves the Service endpoints.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// HelloResponse is the answer of GET /v1/hello.
type HelloResponse struct {
	Message string `json:"message"`
	// Route is the routing key the request carried, if any (see internal/routing).
	Route string `json:"route,omitempty"`
}

func hello(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	writeJSON(w, http.StatusOK, HelloResponse{Message: "Hello, " + name + "!", Route: routing.FromContext(r.Context()).Route})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		logger.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Duration("duration", time.Since(start)),
			slog.String("route", routing.FromContext(r.Context()).Route),
		)
	})
}
