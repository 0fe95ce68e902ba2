package intelapi

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"github.com/omninode/bridge/controlplane/analyze"
)

// errUnavailable: the optimizer's data is not wired into this server.
var errUnavailable = errors.New("recommendations and status are not served by this control plane (optimizer not running)")

// toConnect maps internal errors to Connect codes, in one place. Internal
// errors are logged and reach the caller only as "internal error".
func (s *Server) toConnect(procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, analyze.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, analyze.ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, errUnavailable):
		return connect.NewError(connect.CodeUnavailable, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	s.log.Error("intelligence api error", "procedure", procedure, "err", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}
