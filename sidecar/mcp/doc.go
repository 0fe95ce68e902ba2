// Package mcp captures Model Context Protocol traffic that the sidecar
// proxies to an MCP server over streamable HTTP (JSON-RPC over POST, answers
// as JSON or server-sent events, plus GET event streams).
//
// Capture.Wrap is pass-through middleware: it never changes a byte to or from
// the upstream and never holds up a stream. It copies what passes into
// bounded buffers, splits event streams into messages as they flow, and hands
// complete JSON-RPC payloads to a per-exchange goroutine that decodes them.
// From what it sees it builds:
//
//   - tools.registration_events: tool_discovered the first time a tool
//     appears in a tools/list result, tool_updated when its description or
//     input schema changes, tool_removed when a full list after
//     notifications/tools/list_changed no longer has it;
//   - hooks.execution_intelligence events (kind MCP_TOOL_CALL) for every
//     tools/call, with latency, argument size, JSON-RPC or tool error and the
//     Mcp-Session-Id, arguments redacted.
//
// When capture falls behind or a message is over MaxCaptureBytes, the
// capture of that message is dropped and counted; traffic is never affected.
// It must not act on the traffic (no retries, no rewriting, no requests of
// its own).
package mcp
