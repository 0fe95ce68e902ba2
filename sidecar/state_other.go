//go:build !linux

package sidecar

// mapLive returns plain memory where the live file cannot be mapped: the
// counter then does not survive the process, and a restart after a crash
// continues past the fsynced reservation instead.
func mapLive(path string, size int) ([]byte, error) { return make([]byte, size), nil }

// bootID returns zero: without a boot id the live counter is never trusted.
func bootID() [16]byte { return [16]byte{} }
