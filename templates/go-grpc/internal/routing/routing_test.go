package routing

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
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

// recorder is a health service that records the metadata and routing context of the calls it gets.
type recorder struct {
	healthpb.UnimplementedHealthServer
	md    metadata.MD
	route Context
}

func (r *recorder) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	r.md, _ = metadata.FromIncomingContext(ctx)
	r.route = FromContext(ctx)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func TestInterceptorsCarryTheRoutingContextAcrossAHop(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryServerInterceptor()))
	rec := &recorder{}
	healthpb.RegisterHealthServer(srv, rec)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///bufnet", append(DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	ctx := NewContext(t.Context(), Context{Baggage: "tenant=acme", Route: "alice"})
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := rec.md.Get(RouteHeader); len(got) != 1 || got[0] != "alice" {
		t.Errorf("%s = %v, want [alice]", RouteHeader, got)
	}
	if got := rec.md.Get(BaggageHeader); len(got) != 1 || got[0] != "tenant=acme,devloop-route=alice" {
		t.Errorf("%s = %v", BaggageHeader, got)
	}
	if rec.route.Route != "alice" || rec.route.Baggage != "tenant=acme,devloop-route=alice" {
		t.Errorf("server context = %+v", rec.route)
	}
}

func TestNoRoutingContextSendsNoHeaders(t *testing.T) {
	if got := toOutgoing(t.Context()); got != t.Context() {
		md, _ := metadata.FromOutgoingContext(got)
		t.Fatalf("headers added without a routing context: %v", md)
	}
}
