// Package buildinfo holds what the build stamps into the binary with -ldflags -X (see the Makefile and
// Dockerfile). The defaults describe an unstamped `go build`.
package buildinfo

import (
	"fmt"
	"runtime"
)

// Set with -ldflags "-X <module>/internal/buildinfo.Version=...". They must stay string variables.
var (
	Version   = "dev"
	GitCommit = "unknown"
	// GitDirty is "true" when the working tree had uncommitted changes at build time.
	GitDirty  = "false"
	BuildTime = "unknown"
)

// String is the one-line description that --version prints and the service logs at start-up.
func String(service string) string {
	dirty := ""
	if GitDirty == "true" {
		dirty = ", dirty"
	}
	return fmt.Sprintf("%s %s (commit %s%s, built %s, %s)", service, Version, GitCommit, dirty, BuildTime, runtime.Version())
}
