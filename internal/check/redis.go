package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// checkRedis sends PING.
func checkRedis(ctx context.Context, cfg Config) []Result {
	if cfg.Redis == "" {
		return []Result{skip(NameRedis, "no --redis given")}
	}
	opts := &redis.Options{Addr: cfg.Redis}
	if strings.Contains(cfg.Redis, "://") {
		var err error
		if opts, err = redis.ParseURL(cfg.Redis); err != nil {
			return []Result{fail(NameRedis, "the --redis URL does not parse", "use host:port or redis://[:password@]host:port/db")}
		}
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout
	// One attempt: the check reports, it does not insist.
	opts.MaxRetries, opts.DialerRetries = -1, 1
	rc := redis.NewClient(opts)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		return []Result{fail(NameRedis, fmt.Sprintf("PING %s: %v", opts.Addr, err),
			fmt.Sprintf("is redis-server running and reachable at %s? Check --redis (OMNIBRIDGE_REDIS) and its password", opts.Addr))}
	}
	return []Result{pass(NameRedis, fmt.Sprintf("PONG from %s", opts.Addr))}
}
