// Command {{name}} serves the {{name}} HTTP JSON API, /healthz, and Prometheus metrics on a separate port.
// It drains in-flight requests on SIGTERM.
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
	"{{module}}/internal/config"
	"{{module}}/internal/metrics"
	"{{module}}/internal/server"
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
	apiListener, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.HTTPPort))
	if err != nil {
		return err
	}
	metricsListener, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.MetricsPort))
	if err != nil {
		apiListener.Close()
		return err
	}

	m := metrics.New()
	srv := server.New(logger, m)
	api := &http.Server{Handler: srv.Handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", m.Handler())
	metricsServer := &http.Server{Handler: metricsMux, ReadHeaderTimeout: 5 * time.Second}

	errs := make(chan error, 2)
	for s, l := range map[*http.Server]net.Listener{api: apiListener, metricsServer: metricsListener} {
		go func() {
			if err := s.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	logger.Info("started", "version", buildinfo.Version, "commit", buildinfo.GitCommit,
		"http_port", cfg.HTTPPort, "metrics_port", cfg.MetricsPort)

	select {
	case err := <-errs:
		api.Close()
		metricsServer.Close()
		return err
	case <-ctx.Done():
	}

	// Fail readiness first so that the endpoint leaves the Service, then drain in-flight requests.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	srv.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = errors.Join(api.Shutdown(shutdownCtx), metricsServer.Shutdown(shutdownCtx))
	if err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}
