package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPPort != 8080 || cfg.MetricsPort != 9090 || cfg.LogLevel != slog.LevelInfo || cfg.ShutdownTimeout != 20*time.Second {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestOverrides(t *testing.T) {
	cfg, err := Load(env(map[string]string{"HTTP_PORT": "9000", "METRICS_PORT": "9001", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "5s"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPPort != 9000 || cfg.MetricsPort != 9001 || cfg.LogLevel != slog.LevelDebug || cfg.ShutdownTimeout != 5*time.Second {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestEveryBadValueIsReported(t *testing.T) {
	_, err := Load(env(map[string]string{"HTTP_PORT": "http", "LOG_LEVEL": "loud", "SHUTDOWN_TIMEOUT": "-1s"}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"HTTP_PORT", "LOG_LEVEL", "SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
