package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestLiteTraceMatchesSDK checks that liteTrace parses and propagates as the
// SDK (ParentBased(NeverSample)) with the TraceContext propagator would:
// the same parent accepted or refused, the same trace id, flags and
// tracestate towards the upstream, a new span id.
func TestLiteTraceMatchesSDK(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	tracer := tp.Tracer("test")
	prop := propagation.TraceContext{}
	cases := []struct{ tp, ts string }{
		{"", ""},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ""},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03", "bad state!"},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-04", ""},
		{"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", ""},
		{"00-00000000000000000000000000000000-b7ad6b7169203331-01", ""},
		{"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", ""},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", ""},
		{"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-extra", ""},
		{"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ""},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", ""},
		{"garbage", ""},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.tp != "" {
			h.Set("Traceparent", c.tp)
		}
		if c.ts != "" {
			h.Set("Tracestate", c.ts)
		}
		// SDK path, as the proxy does it with a TracerProvider.
		ctx := prop.Extract(context.Background(), propagation.HeaderCarrier(h))
		parent := trace.SpanContextFromContext(ctx)
		ctx, span := tracer.Start(ctx, "server")
		ctx, client := tracer.Start(ctx, "client")
		want := http.Header{}
		prop.Inject(ctx, propagation.HeaderCarrier(want))
		client.End()
		span.End()

		var lt liteTrace
		lt.start(h)
		if lt.hasParent != parent.IsValid() {
			t.Errorf("%q: parent accepted %v, SDK %v", c.tp, lt.hasParent, parent.IsValid())
			continue
		}
		if parent.IsValid() {
			if lt.traceIDHex() != parent.TraceID().String() || lt.parentIDHex() != parent.SpanID().String() {
				t.Errorf("%q: trace %s parent %s", c.tp, lt.traceIDHex(), lt.parentIDHex())
			}
		}
		got := lt.traceparent()
		w := want.Get("Traceparent")
		if got[:3] != w[:3] || got[52:] != w[52:] || (parent.IsValid() && got[:35] != w[:35]) {
			t.Errorf("%q: upstream traceparent %q, SDK %q", c.tp, got, w)
		}
		if lt.state != want.Get("Tracestate") {
			t.Errorf("%q: tracestate %q, SDK %q", c.tp, lt.state, want.Get("Tracestate"))
		}
		if strings.Contains(got, lt.spanIDHex()) || lt.spanIDHex() == lt.parentIDHex() {
			t.Errorf("%q: server span id %s reused", c.tp, lt.spanIDHex())
		}
	}
}
