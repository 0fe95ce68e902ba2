package emit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A spool segment is a sequence of frames:
//
//	uint32 big-endian payload length | uint32 big-endian CRC-32C of payload | payload
//
// and a payload is one record:
//
//	uvarint len + topic | uvarint len + key | uvarint len + value |
//	uvarint header count | per header: uvarint len + key, uvarint len + value
//
// A frame whose length, checksum or payload does not parse marks the end of
// the valid data: a torn write at the tail after a crash.

const (
	frameHeader = 8
	// maxFrame bounds one frame's payload; larger lengths are corruption.
	maxFrame = 8 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned by decodeFrame for a frame that is torn, fails its
// checksum or does not parse.
var ErrCorrupt = errors.New("corrupt spool frame")

// appendFrame appends the frame of one record to dst.
func appendFrame(dst []byte, r *kgo.Record) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = appendBytes(dst, []byte(r.Topic))
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = appendBytes(dst, []byte(h.Key))
		dst = appendBytes(dst, h.Value)
	}
	payload := dst[start+frameHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// decodeFrame decodes the frame at the start of b. It returns the record and
// the frame's total size. With too few bytes for a whole frame it returns
// ErrCorrupt too: at the tail of a segment that is a torn write.
func decodeFrame(b []byte) (*kgo.Record, int, error) {
	if len(b) < frameHeader {
		return nil, 0, fmt.Errorf("%w: short header (%d bytes)", ErrCorrupt, len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxFrame {
		return nil, 0, fmt.Errorf("%w: length %d over %d", ErrCorrupt, n, maxFrame)
	}
	if uint64(len(b)-frameHeader) < uint64(n) {
		return nil, 0, fmt.Errorf("%w: torn payload (%d of %d bytes)", ErrCorrupt, len(b)-frameHeader, n)
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r, err := decodePayload(payload)
	if err != nil {
		return nil, 0, err
	}
	return r, frameHeader + int(n), nil
}

func decodePayload(p []byte) (*kgo.Record, error) {
	d := decoder{b: p}
	r := &kgo.Record{Topic: string(d.bytes()), Key: d.bytes(), Value: d.bytes()}
	nh := d.uvarint()
	if d.err == nil && nh > uint64(len(d.b)) { // each header takes at least 2 bytes
		d.err = fmt.Errorf("%w: %d headers in %d bytes", ErrCorrupt, nh, len(d.b))
	}
	for i := uint64(0); i < nh && d.err == nil; i++ {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(d.bytes()), Value: d.bytes()})
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: field of %d bytes in %d", ErrCorrupt, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	if n == 0 {
		return nil
	}
	return v
}
