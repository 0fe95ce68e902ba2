package proxy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// rateLog writes at most one record per second (logEvery); the records it
// held back in between are counted in the next one's "suppressed". A flood
// of bad input is visible in the metrics, not as a flood of log lines.
type rateLog struct {
	log        *slog.Logger
	now        func() time.Time
	next       atomic.Int64 // unix nanoseconds before which records are held back
	suppressed atomic.Int64
}

const logEvery = time.Second

func newRateLog(log *slog.Logger) *rateLog {
	return &rateLog{log: log, now: time.Now}
}

// Log writes the record unless one was written less than a second ago.
func (l *rateLog) Log(level slog.Level, msg string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	now := l.now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(logEvery)) {
		l.suppressed.Add(1)
		return
	}
	l.log.Log(context.Background(), level, msg, append(args, "suppressed", l.suppressed.Swap(0))...)
}
