// Command {{name}} serves the {{name}} gRPC API, with gRPC health and reflection, and Prometheus metrics on a
// separate port. It drains in-flight calls on SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"{{module}}/internal/buildinfo"
	"{{module}}/internal/client"
	"{{module}}/internal/config"
	"{{module}}/internal/metrics"
	"{{module}}/internal/server"
	greeterv1 "{{module}}/proto/greeter/v1"
)

const serviceName = "{{name}}"

func main() {
	os.Exit(run())
}

func run() int {
	showVersion := flag.Bool("version", false, "print build information and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(buildinfo.String(serviceName))
		return 0
	}

	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad configuration:\n%v\n", serviceName, err)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).With("service", serviceName)
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("stopped", "error", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	grpcListener, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.GRPCPort))
	if err != nil {
		return err
	}
	metricsListener, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.MetricsPort))
	if err != nil {
		grpcListener.Close()
		return err
	}

	// Calls to other services resolve through xDS (Istio's proxyless gRPC) when a bootstrap is configured, else DNS.
	xds := client.XDSEnabled(os.LookupEnv)
	var opts []server.Option
	if cfg.NextHop != "" {
		conn, err := client.Dial(cfg.NextHop, xds)
		if err != nil {
			grpcListener.Close()
			metricsListener.Close()
			return err
		}
		defer conn.Close()
		opts = append(opts, server.WithNext(greeterv1.NewGreeterServiceClient(conn)))
	}

	m := metrics.New()
	srv := server.New(logger, m, opts...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	metricsServer := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	errs := make(chan error, 2)
	go func() { errs <- srv.GRPC.Serve(grpcListener) }()
	go func() {
		if err := metricsServer.Serve(metricsListener); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	logger.Info("started", "version", buildinfo.Version, "commit", buildinfo.GitCommit,
		"grpc_port", cfg.GRPCPort, "metrics_port", cfg.MetricsPort, "xds", xds, "next_hop", cfg.NextHop)

	select {
	case err := <-errs:
		srv.GRPC.Stop()
		metricsServer.Close()
		return err
	case <-ctx.Done():
	}

	// Report NOT_SERVING first so that readiness fails and the endpoint leaves the Service, then drain.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	srv.Health.Shutdown()
	drained := make(chan struct{})
	go func() { srv.GRPC.GracefulStop(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(cfg.ShutdownTimeout):
		logger.Warn("graceful stop timed out; closing remaining calls")
		srv.GRPC.Stop()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := metricsServer.Shutdown(shutdownCtx); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
