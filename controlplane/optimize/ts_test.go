package optimize_test

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

func durationToTS(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(time.Now().Add(d)) }
