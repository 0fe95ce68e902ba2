// Package buildinfo reports the version of this build. It owns nothing else.
package buildinfo

import "runtime/debug"

// Version is set at link time with -ldflags "-X github.com/omninode/bridge/internal/buildinfo.Version=v1.2.3";
// otherwise it is derived from the module's VCS stamp.
var Version = ""

// String returns the version, "devel+<rev>" from the VCS stamp, or "devel".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel+" + s.Value[:12]
			}
		}
	}
	return "devel"
}
