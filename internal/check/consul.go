package check

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/consul/api"
)

// checkConsul asks for the Raft leader.
func checkConsul(ctx context.Context, cfg Config) []Result {
	if cfg.Consul == "" {
		return []Result{skip(NameConsul, "no --consul given")}
	}
	cc := api.DefaultNonPooledConfig()
	cc.Address = cfg.Consul
	if strings.Contains(cfg.Consul, "://") {
		u, err := url.Parse(cfg.Consul)
		if err != nil {
			return []Result{fail(NameConsul, "the --consul URL does not parse", "use host:port or http(s)://host:port")}
		}
		cc.Scheme, cc.Address = u.Scheme, u.Host
	}
	if cfg.HTTPClient != nil {
		cc.HttpClient = cfg.HTTPClient
	}
	client, err := api.NewClient(cc)
	if err != nil {
		return []Result{fail(NameConsul, fmt.Sprintf("create client: %v", err), "check --consul (OMNIBRIDGE_CONSUL)")}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	leader, err := client.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return []Result{fail(NameConsul, fmt.Sprintf("no answer from %s: %v", cc.Address, err),
			fmt.Sprintf("is the Consul agent running and reachable at %s? Check --consul (OMNIBRIDGE_CONSUL) and CONSUL_HTTP_TOKEN", cc.Address))}
	}
	if leader == "" {
		return []Result{fail(NameConsul, fmt.Sprintf("%s answers but has no leader", cc.Address),
			"the Consul servers have not elected a leader: check that a quorum of servers is up (consul operator raft list-peers)")}
	}
	return []Result{pass(NameConsul, fmt.Sprintf("%s answers, leader %s", cc.Address, leader))}
}
