// Command benchupstream is the upstream of the proxy benchmarks: one port
// serving HTTP/1.1 and h2c (HTTP/2 with prior knowledge). Any HTTP request is
// answered with its own body (echo, with Content-Length); a request with
// content-type application/grpc is answered as a unary gRPC call would be:
// the same length-prefixed message back, then grpc-status 0 in the trailers.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
)

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10+16); return &b }}

func handle(w http.ResponseWriter, r *http.Request) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	*bp = buf
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf)
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Grpc-Message", "")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	_, _ = w.Write(buf)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (HTTP/1.1 and h2c)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: http.HandlerFunc(handle), Protocols: &p, MaxHeaderBytes: 1 << 16}
	log.Fatal(srv.Serve(ln))
}
