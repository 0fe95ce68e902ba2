package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/omninode/bridge/controlplane/store/storetest"
)

// BenchmarkWriteWriters measures store.WriteEvents (COPY into PostgreSQL) with
// storetest.WriteThroughput: b.N fresh mixed-type events per writer count, in
// batches of 5,000, reported as rows/s.
func BenchmarkWriteWriters(b *testing.B) {
	p := openPG(b, nil)
	for _, writers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			total := max(b.N, 5000)
			rate, err := storetest.WriteThroughput(context.Background(), p, total, 5000, writers)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rate, "rows/s")
		})
	}
}
