package proxy

import (
	"bytes"
	"io"
	"net/http"
)

// maxReadAhead is the largest request body read before forwarding.
const maxReadAhead = 4 << 10

// wrapBody puts the request body behind a counter. A small HTTP/1 body
// whose Content-Length is known (and no 100-continue is expected) is read
// first, so that the transport sees an in-memory body and sends the
// request line, headers and body to the upstream in one write instead of
// flushing the headers on their own. Bodies of unknown or larger size are
// streamed as they come.
func wrapBody(r *http.Request, x *exchange) {
	x.body = &countingBody{}
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	if r.ProtoMajor == 1 && r.ContentLength > 0 && r.ContentLength <= maxReadAhead && len(r.Header["Expect"]) == 0 {
		buf := make([]byte, r.ContentLength)
		n, err := io.ReadFull(r.Body, buf)
		if err == nil {
			x.body.n.Store(int64(n))
			r.Body = io.NopCloser(bytes.NewReader(buf))
			return
		}
		// Short or failed: hand on what came and then the error, so the
		// transport fails the request as it would have while streaming.
		x.body.rc = io.NopCloser(io.MultiReader(bytes.NewReader(buf[:n]), errReader{err}))
		r.Body = x.body
		return
	}
	x.body.rc = r.Body
	r.Body = x.body
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
