package bus_test

import (
	"strings"
	"testing"

	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkEncode measures bus.Encode (validate, deterministic marshal,
// headers) for each event type.
func BenchmarkEncode(b *testing.B) {
	for _, ev := range sampleEvents(b) {
		b.Run(strings.TrimPrefix(bus.TypeName(ev), "omninode.bridge.v1."), func(b *testing.B) {
			b.ReportAllocs()
			var r *kgo.Record
			for b.Loop() {
				var err error
				if r, err = bus.Encode(ev); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(r.Value)))
		})
	}
}

// BenchmarkDecode measures bus.Decode (header checks, unmarshal, validate)
// for each event type.
func BenchmarkDecode(b *testing.B) {
	for _, ev := range sampleEvents(b) {
		rec, err := bus.Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimPrefix(bus.TypeName(ev), "omninode.bridge.v1."), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(rec.Value)))
			for b.Loop() {
				if _, err := bus.Decode(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
