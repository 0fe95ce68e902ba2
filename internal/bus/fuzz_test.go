package bus_test

import (
	"testing"

	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzDecode feeds arbitrary headers and payloads to the decoder: it must
// never panic, and anything it accepts must validate and re-encode.
// Seeds: testdata/fuzz/FuzzDecode (run as regression tests by go test).
func FuzzDecode(f *testing.F) {
	for _, ev := range sampleEvents(f) {
		rec, err := bus.Encode(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Topic, bus.TypeName(ev), "1", rec.Value)
	}
	f.Fuzz(func(t *testing.T, topic, typ, schema string, value []byte) {
		rec := &kgo.Record{Topic: topic, Value: value, Headers: []kgo.RecordHeader{
			{Key: bus.HeaderType, Value: []byte(typ)}, {Key: bus.HeaderSchema, Value: []byte(schema)},
		}}
		ev, err := bus.Decode(rec)
		if err != nil {
			if bus.Reason(err) == "other" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if err := bus.Validate(ev); err != nil {
			t.Fatalf("decoded event fails validation: %v", err)
		}
		if _, err := bus.Encode(ev); err != nil {
			t.Fatalf("decoded event does not re-encode: %v", err)
		}
	})
}
