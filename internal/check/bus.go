package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// checkBus asks the brokers for their metadata, then for the topics.
func checkBus(ctx context.Context, cfg Config) []Result {
	if len(cfg.Bus.Brokers) == 0 {
		return []Result{skip(NameBus, "no --brokers given"), skip(NameTopics, "no --brokers given")}
	}
	where := strings.Join(cfg.Bus.Brokers, ",")
	opts, err := cfg.Bus.ClientOpts(kgo.RetryTimeout(cfg.Timeout))
	if err != nil {
		return []Result{fail(NameBus, err.Error(), "fix --brokers and the bus TLS/SASL flags"), skip(NameTopics, "bus not reachable")}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return []Result{fail(NameBus, fmt.Sprintf("create client: %v", err), "fix --brokers and the bus TLS/SASL flags"), skip(NameTopics, "bus not reachable")}
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	mctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	md, err := adm.BrokerMetadata(mctx)
	cancel()
	if err != nil {
		return []Result{
			fail(NameBus, fmt.Sprintf("no answer from %s: %v", where, err),
				fmt.Sprintf("is Redpanda/Kafka running and reachable at %s? Check --brokers (OMNIBRIDGE_BROKERS), the TLS and SASL settings, and any NetworkPolicy in the way", where)),
			skip(NameTopics, "bus not reachable"),
		}
	}
	busRes := pass(NameBus, fmt.Sprintf("%d broker(s) at %s answer, controller %d", len(md.Brokers), where, md.Controller))

	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	topics, err := adm.ListTopics(tctx, bus.AllTopics...)
	if err != nil {
		return []Result{busRes, fail(NameTopics, fmt.Sprintf("list topics: %v", err),
			"the client may lack Describe permission on the topics; check its ACLs")}
	}
	var missing, found []string
	for _, t := range bus.AllTopics {
		d, ok := topics[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			missing = append(missing, t)
			continue
		}
		found = append(found, fmt.Sprintf("%s(%d)", t, len(d.Partitions)))
	}
	if len(missing) > 0 {
		return []Result{busRes, fail(NameTopics, "missing: "+strings.Join(missing, ", "),
			"create them: run the omnibridge-topics Job of deploy/ (kubectl apply -k deploy/overlays/...), or `rpk topic create "+strings.Join(missing, " ")+"`")}
	}
	return []Result{busRes, pass(NameTopics, "all present with partitions: "+strings.Join(found, ", "))}
}
