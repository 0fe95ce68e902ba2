package testenv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/omninode/bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestPostgreSQL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := testenv.PostgreSQL(t)
	conn := pgConnect(t, pg.DSN())

	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO notes VALUES (1, 'hello')"); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := conn.QueryRow(ctx, "SELECT body FROM notes WHERE id = 1").Scan(&body); err != nil || body != "hello" {
		t.Fatalf("SELECT body = %q, %v", body, err)
	}

	// A second caller gets its own empty database on the same server.
	other := testenv.PostgreSQL(t)
	if other.DSN() == pg.DSN() {
		t.Fatalf("two callers share %s", pg.DSN())
	}
	var n int
	err := pgConnect(t, other.DSN()).QueryRow(ctx,
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("fresh database has %d tables, %v", n, err)
	}
}

// TestPostgreSQLStopStart is not parallel: Stop takes down the shared server.
func TestPostgreSQLStopStart(t *testing.T) {
	pg := testenv.PostgreSQL(t)
	ctx := t.Context()
	conn := pgConnect(t, pg.DSN())
	if _, err := conn.Exec(ctx, "CREATE TABLE kv (k text PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO kv VALUES ('a', 'kept')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	pg.Stop(t)
	if c, err := pgx.Connect(ctx, pg.DSN()); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	pg.Start(t)

	var v string
	if err := pgConnect(t, pg.DSN()).QueryRow(ctx, "SELECT v FROM kv WHERE k = 'a'").Scan(&v); err != nil || v != "kept" {
		t.Fatalf("after restart v = %q, %v", v, err)
	}
}

func TestRedis(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { rdb.Close() })

	if err := rdb.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "greeting").Result(); err != nil || got != "hello" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if other := testenv.Redis(t); other.Addr() == r.Addr() {
		t.Fatalf("two callers share %s", r.Addr())
	}
}

func TestRedisStopStart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := testenv.Redis(t)
	addr := r.Addr()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	r.Stop(t)
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded against a stopped server")
	}
	r.Start(t)

	if r.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", r.Addr(), addr)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
	// No persistence: the restarted server is empty.
	if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after restart: %v, want redis.Nil", err)
	}
}

// produceAndFetch produces value to topic and fetches records from the start
// of topic until one with value arrives.
func produceAndFetch(t *testing.T, brokers []string, topic, value string, produce bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if produce {
		rec := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(value)}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record %q in %s: %v", value, topic, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == value })
		if found {
			return
		}
	}
}

func TestKafka(t *testing.T) {
	t.Parallel()
	k := testenv.Kafka(t)
	if len(k.Brokers()) != 1 {
		t.Fatalf("brokers = %v, want one", k.Brokers())
	}
	produceAndFetch(t, k.Brokers(), "hooks.service_lifecycle", "hello", true)
}

func TestKafkaStopStart(t *testing.T) {
	t.Parallel()
	k := testenv.Kafka(t)
	brokers := k.Brokers()
	produceAndFetch(t, brokers, "omnibridge.deadletter", "kept", true)

	k.Stop(t)
	if k.Cluster() != nil {
		t.Fatal("Cluster() non-nil after Stop")
	}
	k.Start(t)

	// Same address, and the record survived through the data directory.
	produceAndFetch(t, brokers, "omnibridge.deadletter", "kept", false)
}

func TestConsul(t *testing.T) {
	ctx := t.Context()
	c := testenv.Consul(t)
	client, err := api.NewClient(&api.Config{Address: c.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	kv := client.KV()
	opts := (&api.WriteOptions{}).WithContext(ctx)
	if _, err := kv.Put(&api.KVPair{Key: "testenv/greeting", Value: []byte("hello")}, opts); err != nil {
		t.Fatal(err)
	}
	pair, _, err := kv.Get("testenv/greeting", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || pair == nil || string(pair.Value) != "hello" {
		t.Fatalf("get = %+v, %v", pair, err)
	}

	c.Stop(t)
	c.Start(t)
	if _, _, err := kv.Get("testenv/greeting", (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		t.Fatalf("get after restart: %v", err)
	}
}
