package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/test/bufconn"

	"{{module}}/internal/metrics"
	"{{module}}/internal/routing"
	greeterv1 "{{module}}/proto/greeter/v1"
)

// dial starts the real server on an in-memory listener and returns a client connection to it.
func dial(t *testing.T, opts ...Option) (*Server, *grpc.ClientConn) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := New(slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(), opts...)
	go func() { _ = srv.GRPC.Serve(lis) }()
	t.Cleanup(srv.GRPC.Stop)

	dialOpts := append(routing.DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	conn, err := grpc.NewClient("passthrough:///bufnet", dialOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

func TestSayHello(t *testing.T) {
	_, conn := dial(t)
	resp, err := greeterv1.NewGreeterServiceClient(conn).SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetMessage() != "Hello, Ada!" {
		t.Fatalf("message = %q", resp.GetMessage())
	}
}

func TestRoutingKeyReachesTheHandler(t *testing.T) {
	_, conn := dial(t)
	client := greeterv1.NewGreeterServiceClient(conn)

	// From the routing context of the caller, through the client interceptor.
	ctx := routing.NewContext(t.Context(), routing.Context{Route: "alice"})
	resp, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRoute() != "alice" {
		t.Fatalf("route = %q, want alice", resp.GetRoute())
	}

	// From a baggage member only, as a mesh-level client would send it.
	ctx = metadata.AppendToOutgoingContext(t.Context(), "baggage", "tenant=acme,devloop-route=bob;ttl=1")
	resp, err = client.SayHello(ctx, &greeterv1.SayHelloRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRoute() != "bob" {
		t.Fatalf("route = %q, want bob", resp.GetRoute())
	}
}

func TestNextHopGetsTheCallWithTheRoutingKey(t *testing.T) {
	_, backConn := dial(t)
	_, conn := dial(t, WithNext(greeterv1.NewGreeterServiceClient(backConn)))
	ctx := metadata.AppendToOutgoingContext(t.Context(), "baggage", "devloop-route=alice")
	var header metadata.MD
	resp, err := greeterv1.NewGreeterServiceClient(conn).SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"}, grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	// The answer is the next hop's, and the routing key travelled with the call.
	if resp.GetMessage() != "Hello, Ada!" || resp.GetRoute() != "alice" {
		t.Fatalf("response = %v", resp)
	}
	if served := header.Get(ServedByHeader); len(served) != 1 || !strings.Contains(served[0], " > ") {
		t.Fatalf("%s = %v, want two hops", ServedByHeader, served)
	}
}

func TestHealthServingThenNotServingAfterShutdown(t *testing.T) {
	srv, conn := dial(t)
	health := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", greeterv1.GreeterService_ServiceDesc.ServiceName} {
		resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health(%q) = %v", service, resp.GetStatus())
		}
	}
	srv.Health.Shutdown()
	resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after shutdown = %v", resp.GetStatus())
	}
}

func TestReflectionListsTheAPI(t *testing.T) {
	_, conn := dial(t)
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{greeterv1.GreeterService_ServiceDesc.ServiceName, "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}
