package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omninode/bridge/controlplane/store"
	"github.com/omninode/bridge/controlplane/store/storetest"
	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PipeRound is one throughput round of the event pipeline.
type PipeRound struct {
	Round  int `json:"round"`
	Events int `json:"events"`
	// ProduceEPS: events encoded (bus.Encode), produced and acknowledged per second.
	ProduceEPS float64 `json:"produce_eps"`
	// BusEPS: events per second from the first produce to the last decoded
	// by a plain consumer (no store).
	BusEPS float64 `json:"bus_eps"`
	// StoreRowsPS: rows per second written by store.WriteEvents (COPY) alone,
	// with storeWriters concurrent writers; StoreRows1PS with one writer.
	StoreRowsPS  float64 `json:"store_rows_ps"`
	StoreRows1PS float64 `json:"store_rows_1_writer_ps"`
	// StoredEPS and AnalyzedEPS: events per second from the first produce to
	// the last stored in PostgreSQL, and to the last handed to the analyzer,
	// by the control plane's ingest (consumer group, lanes, store, analysis).
	StoredEPS   float64 `json:"stored_eps"`
	AnalyzedEPS float64 `json:"analyzed_eps"`
}

// PipeLatency is the emitted-to-decoded and emitted-to-stored latency at a fixed rate.
type PipeLatency struct {
	Rate          int     `json:"rate"`
	Events        int     `json:"events"`
	AchievedEPS   float64 `json:"achieved_eps"`
	StoredP50ms   float64 `json:"stored_p50_ms"`
	StoredP99ms   float64 `json:"stored_p99_ms"`
	AnalyzedP50ms float64 `json:"analyzed_p50_ms"`
	AnalyzedP99ms float64 `json:"analyzed_p99_ms"`
}

// PipelineResults are the event-pipeline measurements.
type PipelineResults struct {
	Broker   string       `json:"broker"`
	Rounds   []PipeRound  `json:"rounds"`
	Latency  *PipeLatency `json:"latency,omitempty"`
	StoreErr string       `json:"store_error,omitempty"`
	// Pending names the parts not measured and why.
	Pending map[string]string `json:"pending,omitempty"`
	// Profiles are the pprof files written (PROFILE=1).
	Profiles []string `json:"profiles,omitempty"`
}

const (
	pipeProducers = 2
	// storeWriters and storeBatch match the store's own BenchmarkWriteEvents.
	storeWriters = 2
	storeBatch   = 5000
)

// runPipeline measures producers -> broker -> decode (broker A), the store's
// COPY path alone, and producers -> broker -> ingest -> PostgreSQL ->
// analysis (broker B, so the plain consumer and the ingest never share a
// topic). during, if not nil, runs alongside the latency pass (the routine
// load under which the critical path is measured).
func runPipeline(ctx context.Context, cfg Config, bins binaries, tmp string, during func(context.Context)) (*PipelineResults, error) {
	log := cfg.Logger
	res := &PipelineResults{Pending: map[string]string{}}
	busBrokers, stopA, how, err := pipelineBroker(ctx, bins, tmp, "a")
	if err != nil {
		return nil, err
	}
	defer stopA()
	res.Broker = how

	var cp *controlPlane
	pg, err := startPostgres(ctx)
	if err == nil {
		defer pg.close()
		var dsn string
		if dsn, err = pg.createDB(ctx, "bench"); err == nil {
			ingBrokers, stopB, _, berr := pipelineBroker(ctx, bins, tmp, "b")
			if berr != nil {
				return res, berr
			}
			defer stopB()
			cp, err = startControlPlane(ctx, dsn, ingBrokers)
		}
	}
	if err != nil {
		res.StoreErr = err.Error()
		res.Pending["ingest, PostgreSQL and analysis"] = "no PostgreSQL: " + firstLines(err.Error(), 2)
		log.Warn("pipeline: no PostgreSQL store; measuring the bus only", "err", err)
	} else {
		defer cp.close()
	}

	if cfg.Profile && cp != nil {
		// The control plane runs in this process: profile it over the rounds.
		stopProf, perr := startCPUProfile(filepath.Join(cfg.OutDir, "controlplane-cpu.pprof"))
		if perr != nil {
			res.Pending["control plane profile"] = perr.Error()
		} else {
			defer func() {
				stopProf()
				res.Profiles = append(res.Profiles, "controlplane-cpu.pprof")
			}()
		}
	}
	for round := 1; round <= cfg.PipelineRounds; round++ {
		r := PipeRound{Round: round, Events: cfg.PipelineEvents}
		if r.ProduceEPS, r.BusEPS, err = busPass(ctx, busBrokers, cfg.PipelineEvents); err != nil {
			return res, fmt.Errorf("pipeline bus pass: %w", err)
		}
		if cp != nil {
			if r.StoreRowsPS, err = storePass(ctx, cp.st, cfg.PipelineEvents, storeWriters); err != nil {
				return res, fmt.Errorf("pipeline store pass: %w", err)
			}
			if r.StoreRows1PS, err = storePass(ctx, cp.st, cfg.PipelineEvents/4, 1); err != nil {
				return res, fmt.Errorf("pipeline store pass: %w", err)
			}
			if r.StoredEPS, r.AnalyzedEPS, err = cp.throughput(ctx, cfg.PipelineEvents); err != nil {
				return res, fmt.Errorf("pipeline ingest pass: %w", err)
			}
		}
		res.Rounds = append(res.Rounds, r)
		log.Info("pipeline round", "round", round, "produce_eps", int(r.ProduceEPS), "bus_eps", int(r.BusEPS),
			"store_rows_ps", int(r.StoreRowsPS), "store_rows_1w_ps", int(r.StoreRows1PS), "stored_eps", int(r.StoredEPS), "analyzed_eps", int(r.AnalyzedEPS))
	}
	var wg sync.WaitGroup
	if during != nil {
		wg.Go(func() { during(ctx) })
	}
	if cp != nil {
		lat, err := cp.latency(ctx, cfg.LatencyRate, cfg.LatencyDuration)
		wg.Wait()
		if err != nil {
			return res, fmt.Errorf("pipeline latency pass: %w", err)
		}
		res.Latency = lat
		log.Info("pipeline latency", "rate", lat.Rate, "stored_p99_ms", lat.StoredP99ms, "analyzed_p99_ms", lat.AnalyzedP99ms)
	}
	wg.Wait()
	return res, nil
}

// pipelineBroker starts `omnibridge broker` as a child process, or an
// in-process kfake broker when omnibridge does not build.
func pipelineBroker(ctx context.Context, bins binaries, tmp, name string) ([]string, func(), string, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	if bins.omnibridge != "" {
		c, err := startChild(tmp, "pipeline-broker-"+name, -1, nil, bins.omnibridge, "broker", "--listen", addr)
		if err == nil {
			if err = waitTCP(ctx, c, addr, 15*time.Second); err == nil {
				return []string{addr}, c.stop, "omnibridge broker (kfake) child process over TCP", nil
			}
			c.stop()
		}
	}
	b, err := bus.StartBroker(bus.BrokerConfig{Listen: addr})
	if err != nil {
		return nil, nil, "", err
	}
	return b.Addrs(), b.Close, "in-process kfake broker over TCP (omnibridge did not build)", nil
}

// consumer reads the communication topic from its current end offsets.
func newTailConsumer(ctx context.Context, brokers []string) (*kgo.Client, error) {
	bc := bus.Config{Brokers: brokers, ClientID: "bench-admin"}
	opts, err := bc.ClientOpts()
	if err != nil {
		return nil, err
	}
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, bus.TopicCommunication)
	adm.Close()
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { parts[o.Partition] = kgo.NewOffset().At(o.Offset) })
	if len(parts) == 0 {
		return nil, errors.New("list end offsets: no partitions")
	}
	bc.ClientID = "bench-consumer"
	opts, err = bc.ClientOpts(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{bus.TopicCommunication: parts}),
		kgo.FetchMaxWait(20*time.Millisecond), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(opts...)
}

func newProducer(brokers []string) (*kgo.Client, error) {
	opts, err := bus.Config{Brokers: brokers, ClientID: "bench-producer"}.ProducerOpts()
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(opts...)
}

// busPass produces n events with pipeProducers producers and decodes them
// with a plain consumer. It returns produce events/s and decoded events/s.
func busPass(ctx context.Context, brokers []string, n int) (produceEPS, busEPS float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cons, err := newTailConsumer(ctx, brokers)
	if err != nil {
		return 0, 0, err
	}
	defer cons.Close()
	var decodedAt time.Time
	consDone := make(chan error, 1)
	go func() {
		decoded := 0
		for decoded < n {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				consDone <- ctx.Err()
				return
			}
			var derr error
			fs.EachRecord(func(r *kgo.Record) {
				if _, err := bus.Decode(r); err != nil {
					derr = err
					return
				}
				decoded++
			})
			if derr != nil {
				consDone <- fmt.Errorf("decode: %w", derr)
				return
			}
		}
		decodedAt = time.Now()
		consDone <- nil
	}()
	start := time.Now()
	produced, err := produceN(ctx, brokers, n)
	if err != nil {
		cancel()
		<-consDone
		return 0, 0, err
	}
	if err := <-consDone; err != nil {
		return 0, 0, err
	}
	return float64(n) / produced.Seconds(), float64(n) / decodedAt.Sub(start).Seconds(), nil
}

// produceN encodes and produces n communication events with pipeProducers
// goroutines and returns when all are acknowledged.
func produceN(ctx context.Context, brokers []string, n int) (time.Duration, error) {
	prod, err := newProducer(brokers)
	if err != nil {
		return 0, err
	}
	defer prod.Close()
	start := time.Now()
	var perr atomic.Value
	var wg sync.WaitGroup
	for p := range pipeProducers {
		wg.Go(func() {
			src := benchSource(p)
			for i := p; i < n; i += pipeProducers {
				rec, err := bus.Encode(communicationEvent(src, time.Now(), i))
				if err != nil {
					perr.CompareAndSwap(nil, err)
					return
				}
				prod.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					if err != nil {
						perr.CompareAndSwap(nil, err)
					}
				})
			}
		})
	}
	wg.Wait()
	if err := prod.Flush(ctx); err != nil {
		return 0, fmt.Errorf("flush: %w", err)
	}
	if e, _ := perr.Load().(error); e != nil {
		return 0, fmt.Errorf("produce: %w", e)
	}
	return time.Since(start), nil
}

// storePass writes n fresh mixed events (storetest's generator, all four
// types, built before the clock starts) straight into the store (COPY path)
// in batches of storeBatch from `writers` goroutines; it returns rows/s.
func storePass(ctx context.Context, st *store.PG, n, writers int) (float64, error) {
	return storetest.WriteThroughput(ctx, st, n, storeBatch, writers)
}

// startCPUProfile profiles this process into path until the returned stop.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
