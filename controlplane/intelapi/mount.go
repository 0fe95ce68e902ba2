package intelapi

import (
	"net/http"
	"strings"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
)

// Service is another Connect service to mount beside the IntelligenceService
// (such as the AdminService), so health and reflection list it too.
type Service struct {
	// Path is the mount path returned by its New...Handler, such as
	// "/omninode.bridge.v1.AdminService/".
	Path string
	// Handler serves it.
	Handler http.Handler
}

// Mount registers the IntelligenceService, the extra services, gRPC health
// (every service reported SERVING) and gRPC reflection (v1 and v1alpha) on
// mux. The returned checker lets the caller change a service's status. For
// gRPC over cleartext, serve mux with unencrypted HTTP/2 enabled
// (http.Server.Protocols.SetUnencryptedHTTP2).
func Mount(mux *http.ServeMux, srv *Server, extra ...Service) *grpchealth.StaticChecker {
	path, h := srv.Handler()
	services := []Service{{Path: path, Handler: h}}
	services = append(services, extra...)
	names := make([]string, 0, len(services))
	for _, s := range services {
		mux.Handle(s.Path, s.Handler)
		names = append(names, strings.Trim(s.Path, "/"))
	}
	checker := grpchealth.NewStaticChecker(names...)
	mux.Handle(grpchealth.NewHandler(checker))
	reflector := grpcreflect.NewStaticReflector(append(names, grpchealth.HealthV1ServiceName)...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return checker
}
