// Package routing carries the request's routing context from incoming to outgoing calls: the W3C `baggage`
// header and the devloop routing key. A developer's key on a request makes the mesh route it, hop by hop,
// to that developer's versions of the services; it only works if every service forwards it, which the
// interceptors here do for gRPC.
package routing

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
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

// FromHeaders builds the routing context from request headers; get returns a header's value or "".
func FromHeaders(get func(name string) string) Context {
	rc := Context{Baggage: get(BaggageHeader), Route: get(RouteHeader)}
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

// headers returns the outgoing headers for rc; a routing key without baggage still travels in both forms.
func (rc Context) headers() []string {
	var kv []string
	baggage := rc.Baggage
	if rc.Route != "" && BaggageMember(baggage, RouteBaggageKey) == "" {
		if baggage != "" {
			baggage += ","
		}
		baggage += RouteBaggageKey + "=" + rc.Route
	}
	if baggage != "" {
		kv = append(kv, BaggageHeader, baggage)
	}
	if rc.Route != "" {
		kv = append(kv, RouteHeader, rc.Route)
	}
	return kv
}

func fromIncoming(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	rc := FromHeaders(func(name string) string { return strings.Join(md.Get(name), ",") })
	return NewContext(ctx, rc)
}

func toOutgoing(ctx context.Context) context.Context {
	kv := FromContext(ctx).headers()
	if len(kv) == 0 {
		return ctx
	}
	// Replace rather than append: a caller that set the headers itself must not send them twice.
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	for i := 0; i < len(kv); i += 2 {
		md.Set(kv[i], kv[i+1])
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// UnaryServerInterceptor puts the incoming routing context into the handler's context.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(fromIncoming(ctx), req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &contextStream{ServerStream: ss, ctx: fromIncoming(ss.Context())})
	}
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// UnaryClientInterceptor adds the routing context of ctx to every outgoing call.
func UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(toOutgoing(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor is UnaryClientInterceptor for streaming calls.
func StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(toOutgoing(ctx), desc, cc, method, opts...)
	}
}

// DialOptions are the options every client connection of this service should use, so that outgoing calls
// carry the routing context.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(StreamClientInterceptor()),
	}
}
