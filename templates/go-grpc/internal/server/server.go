// Package server assembles the gRPC server: the API, the health service, reflection and the interceptors.
package server

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"{{module}}/internal/metrics"
	"{{module}}/internal/routing"
	greeterv1 "{{module}}/proto/greeter/v1"
)

// Server is the gRPC server with its health service, which the caller flips to NOT_SERVING on shutdown.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
}

// ServedByHeader is the response header naming who answered: this instance's host name (the pod name), followed by
// " > " and the next hop's own answer when the call was passed on. It shows where the mesh routed each hop.
const ServedByHeader = "x-served-by"

// Option configures the server.
type Option func(*Greeter)

// WithNext makes SayHello pass each call on to next (see config.NextHop), forwarding the routing context.
func WithNext(next greeterv1.GreeterServiceClient) Option {
	return func(g *Greeter) { g.Next = next }
}

// New builds the server with every service registered and marked SERVING.
func New(logger *slog.Logger, m *metrics.Metrics, opts ...Option) *Server {
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(routing.UnaryServerInterceptor(), m.UnaryServerInterceptor(), logRequests(logger)),
		grpc.ChainStreamInterceptor(routing.StreamServerInterceptor()),
	)
	name, _ := os.Hostname()
	greeter := &Greeter{Logger: logger, Name: name}
	for _, opt := range opts {
		opt(greeter)
	}
	greeterv1.RegisterGreeterServiceServer(srv, greeter)

	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus(greeterv1.GreeterService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	// Reflection lets grpcurl and similar tools list and call the API without the .proto files.
	reflection.Register(srv)
	return &Server{GRPC: srv, Health: hs}
}

func logRequests(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logger.LogAttrs(ctx, slog.LevelDebug, "rpc",
			slog.String("method", info.FullMethod),
			slog.String("code", status.Code(err).String()),
			slog.Duration("duration", time.Since(start)),
			slog.String("route", routing.FromContext(ctx).Route),
		)
		return resp, err
	}
}

// Greeter implements the example API.
type Greeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	Logger *slog.Logger
	// Name identifies this instance in the ServedByHeader (the host name, which is the pod name in Kubernetes).
	Name string
	// Next, when set, receives every call (see WithNext).
	Next greeterv1.GreeterServiceClient
}

// SayHello greets the caller and echoes the routing key it arrived with. With a next hop, the greeting is the next
// hop's, reached with the same routing context (the client interceptor adds it to the outgoing call).
func (g *Greeter) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	if g.Next != nil {
		var header metadata.MD
		resp, err := g.Next.SayHello(ctx, req, grpc.Header(&header))
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "next hop: %v", err)
		}
		_ = grpc.SetHeader(ctx, metadata.Pairs(ServedByHeader, g.Name+" > "+strings.Join(header.Get(ServedByHeader), ",")))
		return resp, nil
	}
	name := req.GetName()
	if name == "" {
		name = "world"
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(ServedByHeader, g.Name))
	return &greeterv1.SayHelloResponse{Message: "Hello, " + name + "!", Route: routing.FromContext(ctx).Route}, nil
}
