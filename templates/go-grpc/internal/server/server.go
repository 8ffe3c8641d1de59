// Package server assembles the gRPC server: the API, the health service, reflection and the interceptors.
package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

// New builds the server with every service registered and marked SERVING.
func New(logger *slog.Logger, m *metrics.Metrics) *Server {
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(routing.UnaryServerInterceptor(), m.UnaryServerInterceptor(), logRequests(logger)),
		grpc.ChainStreamInterceptor(routing.StreamServerInterceptor()),
	)
	greeterv1.RegisterGreeterServiceServer(srv, &Greeter{Logger: logger})

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
}

// SayHello greets the caller and echoes the routing key it arrived with.
func (g *Greeter) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	name := req.GetName()
	if name == "" {
		name = "world"
	}
	return &greeterv1.SayHelloResponse{Message: "Hello, " + name + "!", Route: routing.FromContext(ctx).Route}, nil
}
