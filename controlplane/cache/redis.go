package cache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures the Redis cache.
type RedisConfig struct {
	// Addr is host:port. Required.
	Addr string
	// Password, optional.
	Password string
	// DB number; default 0.
	DB int
	// Timeout bounds each command (dial, read, write); default 200ms, so a
	// dead Redis costs little before reads fall through.
	Timeout time.Duration
	// Cooldown is how long the cache reports itself unavailable after a
	// failure without trying Redis again; default 1s.
	Cooldown time.Duration
}

// Redis is the Redis-backed cache.
type Redis struct {
	cfg       RedisConfig
	client    *redis.Client
	downUntil atomic.Int64 // unix nanos; commands fail fast before it
}

var _ Cache = (*Redis)(nil)

// NewRedis returns a Redis cache; it does not connect until first use.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Addr == "" {
		return nil, errors.New("cache: redis addr is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 200 * time.Millisecond
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = time.Second
	}
	if cfg.Timeout < 0 || cfg.Cooldown < 0 {
		return nil, errors.New("cache: redis timeout and cooldown must not be negative")
	}
	c := redis.NewClient(&redis.Options{
		Addr:         cfg.Addr,
		Password:     cfg.Password,
		DB:           cfg.DB,
		DialTimeout:  cfg.Timeout,
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		MaxRetries:   -1, // no retries: a failure falls through to the store at once
		PoolTimeout:  cfg.Timeout,
	})
	return &Redis{cfg: cfg, client: c}, nil
}

// Close closes the client.
func (r *Redis) Close() error { return r.client.Close() }

// Ping checks the connection.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

func (r *Redis) check() error {
	if time.Now().UnixNano() < r.downUntil.Load() {
		return fmt.Errorf("redis: %w", ErrUnavailable)
	}
	return nil
}

func (r *Redis) fail(err error) error {
	r.downUntil.Store(time.Now().Add(r.cfg.Cooldown).UnixNano())
	return err
}

// Get implements [Cache].
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := r.check(); err != nil {
		return nil, false, err
	}
	b, err := r.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.fail(fmt.Errorf("redis get: %w", err))
	}
	return b, true, nil
}

// Set implements [Cache].
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := r.client.Set(ctx, key, val, ttl).Err(); err != nil {
		return r.fail(fmt.Errorf("redis set: %w", err))
	}
	return nil
}

// Del implements [Cache].
func (r *Redis) Del(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := r.check(); err != nil {
		return err
	}
	if err := r.client.Del(ctx, keys...).Err(); err != nil {
		return r.fail(fmt.Errorf("redis del: %w", err))
	}
	return nil
}

// Purge deletes every key with the prefix (SCAN + DEL).
func (r *Redis) Purge(ctx context.Context, prefix string) error {
	if err := r.check(); err != nil {
		return err
	}
	iter := r.client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := r.client.Del(ctx, batch...).Err(); err != nil {
				return r.fail(fmt.Errorf("redis purge: %w", err))
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return r.fail(fmt.Errorf("redis purge: %w", err))
	}
	if len(batch) > 0 {
		if err := r.client.Del(ctx, batch...).Err(); err != nil {
			return r.fail(fmt.Errorf("redis purge: %w", err))
		}
	}
	return nil
}
