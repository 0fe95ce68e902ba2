package check

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
)

// maxListed bounds how many out-of-sync sidecars a failure names.
const maxListed = 5

// checkSidecars asks the control plane for every sidecar's directive sync
// state (IntelligenceService.GetStatus).
func checkSidecars(ctx context.Context, cfg Config) []Result {
	if cfg.Server == "" {
		return []Result{skip(NameSidecars, "no --server given")}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	client := bridgev1connect.NewIntelligenceServiceClient(hc, strings.TrimSuffix(cfg.Server, "/"))
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req := connect.NewRequest(&bridgev1.GetStatusRequest{})
	if cfg.Token != "" {
		req.Header().Set("Authorization", "Bearer "+cfg.Token)
	}
	resp, err := client.GetStatus(ctx, req)
	switch code := connect.CodeOf(err); {
	case err == nil:
	case code == connect.CodeUnimplemented:
		return []Result{skip(NameSidecars, fmt.Sprintf("%s does not serve the sync status (%v)", cfg.Server, err))}
	case code == connect.CodeUnavailable && !errors.Is(err, context.DeadlineExceeded):
		return []Result{skip(NameSidecars, fmt.Sprintf("control plane API unavailable at %s (%v); check it is running", cfg.Server, err))}
	case code == connect.CodeUnauthenticated || code == connect.CodePermissionDenied:
		return []Result{fail(NameSidecars, fmt.Sprintf("%s refused the request: %v", cfg.Server, err),
			"pass a viewer token with --token (OMNIBRIDGE_TOKEN)")}
	default:
		return []Result{fail(NameSidecars, fmt.Sprintf("GetStatus at %s: %v", cfg.Server, err),
			fmt.Sprintf("is the control plane running and reachable at %s? Check --server", cfg.Server))}
	}
	var synced, disconnected int
	var stale, rejected []string
	for _, s := range resp.Msg.GetSidecars() {
		id := s.GetService() + "/" + s.GetInstance()
		switch {
		case s.GetSyncState() == "REJECTED":
			rejected = append(rejected, fmt.Sprintf("%s (version %d: %s)", id, s.GetRejectedVersion(), s.GetRejectReason()))
		case s.GetSyncState() == "STALE":
			stale = append(stale, fmt.Sprintf("%s (acked %d of %d)", id, s.GetAckedVersion(), s.GetSentVersion()))
		default:
			synced++
		}
		if !s.GetConnected() {
			disconnected++
		}
	}
	total := len(resp.Msg.GetSidecars())
	if len(rejected) > 0 {
		return []Result{fail(NameSidecars, fmt.Sprintf("%d of %d sidecar(s) rejected directives: %s", len(rejected), total, list(rejected)),
			"see why with `omnibridge status`; the directive likely breaks a sidecar guardrail and will be rolled back, or fix it and re-apply")}
	}
	if len(stale) > 0 {
		return []Result{fail(NameSidecars, fmt.Sprintf("%d of %d sidecar(s) behind: %s", len(stale), total, list(stale)),
			"those sidecars have not acknowledged the latest directives: check their connectivity to the control plane and their logs (kubectl logs POD -c omnibridge-proxy)")}
	}
	detail := fmt.Sprintf("%d sidecar(s) in sync", synced)
	if disconnected > 0 {
		detail += fmt.Sprintf(" (%d not connected now)", disconnected)
	}
	return []Result{pass(NameSidecars, detail)}
}

func list(items []string) string {
	sort.Strings(items)
	if len(items) > maxListed {
		return strings.Join(items[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(items)-maxListed)
	}
	return strings.Join(items, ", ")
}
