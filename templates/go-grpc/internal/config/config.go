// Package config reads the service's settings from environment variables.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Config is everything the service reads from its environment.
type Config struct {
	// GRPCPort serves the API, health and reflection (GRPC_PORT, default 8080).
	GRPCPort int
	// MetricsPort serves Prometheus metrics on /metrics (METRICS_PORT, default 9090).
	MetricsPort int
	// LogLevel is debug, info, warn or error (LOG_LEVEL, default info).
	LogLevel slog.Level
	// ShutdownTimeout bounds the graceful drain after SIGTERM (SHUTDOWN_TIMEOUT, default 20s);
	// keep it below the pod's terminationGracePeriodSeconds.
	ShutdownTimeout time.Duration
	// NextHop is the host:port of another GreeterService that SayHello passes each call on to, with the request's
	// routing context (NEXT_HOP, default none: answer here). See internal/client for how it is resolved.
	NextHop string
}

// Load reads the configuration through lookup (os.LookupEnv in main) and reports every bad value at once.
func Load(lookup func(string) (string, bool)) (Config, error) {
	cfg := Config{GRPCPort: 8080, MetricsPort: 9090, LogLevel: slog.LevelInfo, ShutdownTimeout: 20 * time.Second}
	var errs []error
	if v, ok := lookup("GRPC_PORT"); ok {
		cfg.GRPCPort, errs = port("GRPC_PORT", v, errs)
	}
	if v, ok := lookup("METRICS_PORT"); ok {
		cfg.MetricsPort, errs = port("METRICS_PORT", v, errs)
	}
	if v, ok := lookup("LOG_LEVEL"); ok {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	if v, ok := lookup("SHUTDOWN_TIMEOUT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT=%q: want a positive duration such as 20s", v))
		}
		cfg.ShutdownTimeout = d
	}
	if v, ok := lookup("NEXT_HOP"); ok {
		cfg.NextHop = v
	}
	if cfg.GRPCPort != 0 && cfg.GRPCPort == cfg.MetricsPort {
		errs = append(errs, fmt.Errorf("GRPC_PORT and METRICS_PORT are both %d: they must differ", cfg.GRPCPort))
	}
	return cfg, errors.Join(errs...)
}

func port(name, value string, errs []error) (int, []error) {
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > 65535 {
		return 0, append(errs, fmt.Errorf("%s=%q: want a port number between 1 and 65535", name, value))
	}
	return n, errs
}
