package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Faults are the runtime fault knobs of the demo services. The zero value has
// every fault off; all methods are safe for concurrent use.
type Faults struct {
	paymentsErrorRate atomicFloat
	inventoryLatency  atomic.Int64 // extra latency in nanoseconds
	canaryErrorRate   atomicFloat
	toolErrorRate     atomicFloat
}

// FaultState is a copy of the knobs at one instant.
type FaultState struct {
	// PaymentsErrorRate is the share of payments requests answered 503, 0 to 1.
	PaymentsErrorRate float64
	// InventoryLatency is the latency added to every inventory request.
	InventoryLatency time.Duration
	// CanaryErrorRate is the share of orders v2 requests answered 500, 0 to 1.
	CanaryErrorRate float64
	// ToolErrorRate is the share of inventory.check MCP tool calls that fail, 0 to 1.
	ToolErrorRate float64
}

// Active lists the faults that are on, in words.
func (s FaultState) Active() []string {
	var out []string
	if s.PaymentsErrorRate > 0 {
		out = append(out, fmt.Sprintf("payments flaky (%.0f%% 503)", s.PaymentsErrorRate*100))
	}
	if s.InventoryLatency > 0 {
		out = append(out, fmt.Sprintf("inventory slow release (+%s)", s.InventoryLatency))
	}
	if s.CanaryErrorRate > 0 {
		out = append(out, fmt.Sprintf("orders v2 bad canary (%.0f%% 500)", s.CanaryErrorRate*100))
	}
	if s.ToolErrorRate > 0 {
		out = append(out, fmt.Sprintf("MCP inventory.check failing (%.0f%%)", s.ToolErrorRate*100))
	}
	return out
}

// SetPaymentsFlaky makes payments answer 503 to this share of requests (0 turns it off).
func (f *Faults) SetPaymentsFlaky(rate float64) { f.paymentsErrorRate.Store(clamp01(rate)) }

// SetInventorySlow adds this latency to every inventory request (0 turns it off).
func (f *Faults) SetInventorySlow(d time.Duration) { f.inventoryLatency.Store(int64(max(d, 0))) }

// SetCanaryErrors makes orders v2 answer 500 to this share of requests.
func (f *Faults) SetCanaryErrors(rate float64) { f.canaryErrorRate.Store(clamp01(rate)) }

// SetToolFailing makes the inventory.check MCP tool fail for this share of calls.
func (f *Faults) SetToolFailing(rate float64) { f.toolErrorRate.Store(clamp01(rate)) }

// State returns the current knobs.
func (f *Faults) State() FaultState {
	if f == nil {
		return FaultState{}
	}
	return FaultState{
		PaymentsErrorRate: f.paymentsErrorRate.Load(),
		InventoryLatency:  time.Duration(f.inventoryLatency.Load()),
		CanaryErrorRate:   f.canaryErrorRate.Load(),
		ToolErrorRate:     f.toolErrorRate.Load(),
	}
}

// Set replaces every knob at once.
func (f *Faults) Set(s FaultState) {
	f.SetPaymentsFlaky(s.PaymentsErrorRate)
	f.SetInventorySlow(s.InventoryLatency)
	f.SetCanaryErrors(s.CanaryErrorRate)
	f.SetToolFailing(s.ToolErrorRate)
}

// hit reports whether a fault of this rate strikes now.
func hit(rate float64) bool { return rate > 0 && rand.Float64() < rate }

func clamp01(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return min(v, 1)
}

type atomicFloat struct{ bits atomic.Uint64 }

func (a *atomicFloat) Load() float64   { return math.Float64frombits(a.bits.Load()) }
func (a *atomicFloat) Store(v float64) { a.bits.Store(math.Float64bits(v)) }
