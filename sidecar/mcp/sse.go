package mcp

import "bytes"

// sseSplitter splits a text/event-stream into events as bytes arrive, and
// calls emit with the data of every "message" event (the default event
// type). It keeps at most max bytes of one line and of one event's data; an
// event over that is skipped whole and reported through dropped. It never
// blocks and allocates only for the event being assembled.
type sseSplitter struct {
	max     int64
	emit    func(data []byte)
	dropped func()

	line    []byte
	data    []byte
	hasData bool
	event   string
	skip    bool // the current event is over max
	lastCR  bool // the previous chunk ended in '\r' (a "\r\n" may straddle chunks)
}

func newSSESplitter(max int64, emit func([]byte)) *sseSplitter {
	return &sseSplitter{max: max, emit: emit, dropped: func() {}}
}

func (s *sseSplitter) write(p []byte) {
	for len(p) > 0 {
		if s.lastCR {
			s.lastCR = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			s.appendLine(p)
			return
		}
		s.appendLine(p[:i])
		s.lastCR = p[i] == '\r'
		s.endLine()
		p = p[i+1:]
	}
}

func (s *sseSplitter) appendLine(p []byte) {
	if s.skip {
		return
	}
	if int64(len(s.line)+len(p)) > s.max {
		s.skip = true
		s.line = s.line[:0]
		return
	}
	s.line = append(s.line, p...)
}

func (s *sseSplitter) endLine() {
	line := s.line
	s.line = s.line[:0]
	if len(line) == 0 {
		s.dispatch()
		return
	}
	if s.skip || line[0] == ':' {
		return
	}
	field, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(field) {
	case "data":
		if int64(len(s.data)+len(value)+1) > s.max {
			s.skip = true
			return
		}
		s.data = append(append(s.data, value...), '\n')
		s.hasData = true
	case "event":
		s.event = string(value)
	}
}

func (s *sseSplitter) dispatch() {
	switch {
	case s.skip:
		s.dropped()
	case s.hasData && (s.event == "" || s.event == "message"):
		data := bytes.TrimSuffix(s.data, []byte("\n"))
		s.emit(bytes.Clone(data))
	}
	s.data = s.data[:0]
	s.hasData = false
	s.event = ""
	s.skip = false
}
