package rpcmetrics

import (
	"context"
	"errors"
	"io"

	"connectrpc.com/connect"
)

// HandlerOption returns the interceptor to give each observed service's
// handler, as its last (innermost) interceptor: it marks the calls that
// reached the handler, so that their own errors are not counted as
// refusals, and on streams records the first message that failed to arrive
// (does not decode, is truncated or too large, or is refused by an outer
// interceptor's Receive). Unary requests are decoded before any interceptor
// runs, so a unary call that never got here was refused. Calls without
// Middleware in front pass untouched.
func (r *Rejections) HandlerOption() connect.HandlerOption {
	return connect.WithInterceptors(interceptor{})
}

type interceptor struct{}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

func (interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if c := callOf(ctx); c != nil {
			c.reached.Store(true)
		}
		return next(ctx, req)
	}
}

func (interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		c := callOf(ctx)
		if c == nil {
			return next(ctx, conn)
		}
		c.reached.Store(true)
		return next(ctx, &receiveConn{StreamingHandlerConn: conn, c: c})
	}
}

// receiveConn records the first refused message of a stream.
type receiveConn struct {
	connect.StreamingHandlerConn
	c *call
}

func (r *receiveConn) Receive(msg any) error {
	err := r.StreamingHandlerConn.Receive(msg)
	if err != nil && !errors.Is(err, io.EOF) {
		if code := connect.CodeOf(err); refused(code) {
			r.c.recvCode.CompareAndSwap(0, uint32(code))
		}
	}
	return err
}

// refused tells a refused message from a peer that went away: Connect
// reports a cancelled or disconnected client as Canceled or
// DeadlineExceeded (net/http's HTTP/2 server cancels the request context
// before it fails the body on RST_STREAM, and fails it with "client
// disconnected" when the connection drops), and another broken read as
// Unknown; a body that ends inside a frame is Internal, one that does not
// decode InvalidArgument, one over the size limit ResourceExhausted.
func refused(code connect.Code) bool {
	switch code {
	case connect.CodeCanceled, connect.CodeDeadlineExceeded, connect.CodeUnknown:
		return false
	}
	return true
}
