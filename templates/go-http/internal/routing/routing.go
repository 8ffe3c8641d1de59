// Package routing carries the request's routing context from incoming to outgoing calls: the W3C `baggage`
// header and the devloop routing key. A developer's key on a request makes the mesh route it, hop by hop,
// to that developer's versions of the services; it only works if every service forwards it, which the
// middleware and transport here do for HTTP.
package routing

import (
	"context"
	"net/http"
	"strings"
)

const (
	// BaggageHeader is the W3C Baggage header (https://www.w3.org/TR/baggage/).
	BaggageHeader = "baggage"
	// RouteHeader carries the devloop routing key on its own, for mesh routes that match a header exactly.
	RouteHeader = "x-devloop-route"
	// RouteBaggageKey is the baggage member that carries the routing key.
	RouteBaggageKey = "devloop-route"
)

// Context is the routing context of one request.
type Context struct {
	// Baggage is the incoming baggage header, forwarded as is.
	Baggage string
	// Route is the devloop routing key: the RouteHeader, else the RouteBaggageKey baggage member.
	Route string
}

type contextKey struct{}

// NewContext returns ctx carrying rc.
func NewContext(ctx context.Context, rc Context) context.Context {
	return context.WithValue(ctx, contextKey{}, rc)
}

// FromContext returns the routing context ctx carries (the zero Context if none).
func FromContext(ctx context.Context) Context {
	rc, _ := ctx.Value(contextKey{}).(Context)
	return rc
}

// FromHeaders builds the routing context from request headers.
func FromHeaders(h http.Header) Context {
	rc := Context{Baggage: strings.Join(h.Values(BaggageHeader), ","), Route: h.Get(RouteHeader)}
	if rc.Route == "" {
		rc.Route = BaggageMember(rc.Baggage, RouteBaggageKey)
	}
	return rc
}

// BaggageMember returns the value of member key in a W3C baggage header, or "" when absent.
func BaggageMember(baggage, key string) string {
	for _, member := range strings.Split(baggage, ",") {
		kv, _, _ := strings.Cut(member, ";") // drop member properties
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// SetHeaders writes rc into h; a routing key without baggage still travels in both forms.
func (rc Context) SetHeaders(h http.Header) {
	baggage := rc.Baggage
	if rc.Route != "" && BaggageMember(baggage, RouteBaggageKey) == "" {
		if baggage != "" {
			baggage += ","
		}
		baggage += RouteBaggageKey + "=" + rc.Route
	}
	if baggage != "" {
		h.Set(BaggageHeader, baggage)
	}
	if rc.Route != "" {
		h.Set(RouteHeader, rc.Route)
	}
}

// Middleware puts the incoming routing context into the request's context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), FromHeaders(r.Header))))
	})
}

// Transport adds the routing context of each request's context to the outgoing request.
type Transport struct {
	// Base does the actual round trip; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	rc := FromContext(req.Context())
	if rc == (Context{}) {
		return base.RoundTrip(req)
	}
	// A RoundTripper must not modify the caller's request.
	out := req.Clone(req.Context())
	rc.SetHeaders(out.Header)
	return base.RoundTrip(out)
}

// Client returns an HTTP client whose requests carry the routing context of their context; create
// outgoing requests with http.NewRequestWithContext(r.Context(), ...).
func Client() *http.Client {
	return &http.Client{Transport: &Transport{}}
}
