package mesh

import (
	"log/slog"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/rpcmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// newRejections counts the control plane's refused calls on its three
// Connect entry points: the intelligence API ("api"), the admin API
// ("admin") and the directive stream ("directive").
func newRejections(reg prometheus.Registerer, log *slog.Logger) (*rpcmetrics.Rejections, error) {
	intel := bridgev1.File_omninode_bridge_v1_intelligence_proto.Services()
	cfg := rpcmetrics.DefaultConfig()
	cfg.Registry, cfg.Logger = reg, log
	cfg.Services = []rpcmetrics.Service{
		{Entry: "api", Desc: intel.ByName("IntelligenceService")},
		{Entry: "admin", Desc: intel.ByName("AdminService")},
		{Entry: "directive", Desc: bridgev1.File_omninode_bridge_v1_directives_proto.Services().ByName("DirectiveService")},
	}
	return rpcmetrics.New(cfg)
}
