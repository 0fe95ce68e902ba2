package bus

import (
	"fmt"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/proto"
)

// The four intelligence topics, named exactly as the original design names them.
const (
	TopicLifecycle     = "hooks.service_lifecycle"
	TopicExecution     = "hooks.execution_intelligence"
	TopicCommunication = "proxy.communication_intelligence"
	TopicTools         = "tools.registration_events"
	// TopicDeadLetter receives records the control plane could not decode or
	// validate, unchanged, with the reason in the omninode-dlq-reason header.
	TopicDeadLetter = "omnibridge.deadletter"
)

// Topics lists the four intelligence topics.
var Topics = []string{TopicLifecycle, TopicExecution, TopicCommunication, TopicTools}

// AllTopics lists the intelligence topics and the dead-letter topic.
var AllTopics = append(append([]string(nil), Topics...), TopicDeadLetter)

// SchemaVersion is the schema version of the events in gen/, sent in the
// omninode-schema header and Envelope.schema_version.
const SchemaVersion = 1

// Event is any of the four intelligence events.
type Event interface {
	proto.Message
	GetEnvelope() *bridgev1.Envelope
}

// TopicOf returns the topic an event belongs on.
func TopicOf(ev Event) (string, error) {
	switch ev.(type) {
	case *bridgev1.ServiceLifecycleEvent:
		return TopicLifecycle, nil
	case *bridgev1.ExecutionIntelligenceEvent:
		return TopicExecution, nil
	case *bridgev1.CommunicationIntelligenceEvent:
		return TopicCommunication, nil
	case *bridgev1.ToolRegistrationEvent:
		return TopicTools, nil
	default:
		return "", fmt.Errorf("%w: %T", ErrUnknownType, ev)
	}
}

// typeNames maps a message full name (the omninode-type header) to its topic
// and a constructor.
var typeNames = map[string]struct {
	topic string
	new   func() Event
}{
	string((&bridgev1.ServiceLifecycleEvent{}).ProtoReflect().Descriptor().FullName()):          {TopicLifecycle, func() Event { return &bridgev1.ServiceLifecycleEvent{} }},
	string((&bridgev1.ExecutionIntelligenceEvent{}).ProtoReflect().Descriptor().FullName()):     {TopicExecution, func() Event { return &bridgev1.ExecutionIntelligenceEvent{} }},
	string((&bridgev1.CommunicationIntelligenceEvent{}).ProtoReflect().Descriptor().FullName()): {TopicCommunication, func() Event { return &bridgev1.CommunicationIntelligenceEvent{} }},
	string((&bridgev1.ToolRegistrationEvent{}).ProtoReflect().Descriptor().FullName()):          {TopicTools, func() Event { return &bridgev1.ToolRegistrationEvent{} }},
}

// TypeName returns the omninode-type header value of an event.
func TypeName(ev Event) string { return string(ev.ProtoReflect().Descriptor().FullName()) }
