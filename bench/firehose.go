package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// A firehose load runs hundreds of subscribers on the machine that also
// runs the server, so the subscriber is kept light: one goroutine and one
// reused buffer per connection, and a CBOR scan that reads the frame
// header and two top-level strings of a #commit body (repo, rev) and
// skips everything else without allocating. The blocks and ops are not
// decoded and nothing is verified: this measures delivery, not a consumer.

// Delivery is one #commit a subscriber received.
type Delivery struct {
	Rev string
	At  time.Time
}

// Subscriber is one open com.atproto.sync.subscribeRepos connection that
// keeps the #commit frames of one repository.
type Subscriber struct {
	conn *websocket.Conn
	repo string

	mu     sync.Mutex
	got    []Delivery
	frames int
	err    error
	done   chan struct{}
}

// Subscribe opens subscribeRepos (live, no cursor) at the PDS base URL and
// keeps the time each #commit of repo arrives. It returns once the
// WebSocket is open.
func Subscribe(ctx context.Context, base, repo string) (*Subscriber, error) {
	u, err := ParseLoopbackURL(base)
	if err != nil {
		return nil, err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	d := &websocket.Dialer{
		NetDialContext:   (&net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}).DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  256,
	}
	conn, resp, err := d.DialContext(ctx, u.String()+"/xrpc/com.atproto.sync.subscribeRepos", nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	conn.SetReadLimit(8 << 20)
	s := &Subscriber{conn: conn, repo: repo, done: make(chan struct{})}
	go s.read()
	return s, nil
}

func (s *Subscriber) read() {
	defer close(s.done)
	buf := make([]byte, 0, 16<<10)
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				break
			}
		}
		at := time.Now()
		repo, rev, ok := scanCommit(buf)
		s.mu.Lock()
		s.frames++
		if ok && repo == s.repo {
			s.got = append(s.got, Delivery{Rev: rev, At: at})
		}
		s.mu.Unlock()
	}
}

// Count is how many #commit frames of the repository have arrived.
func (s *Subscriber) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// Close closes the connection and returns the deliveries, the number of
// frames of any kind received, and the read error that ended the stream
// before Close, if any.
func (s *Subscriber) Close() ([]Delivery, int, error) {
	s.mu.Lock()
	early := s.err
	s.mu.Unlock()
	s.conn.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got, s.frames, early
}

var errCBOR = errors.New("malformed CBOR")

// scanCommit reads a firehose frame (header then body, both DAG-CBOR
// maps) and returns the body's repo and rev when the header is
// {op: 1, t: "#commit"}.
func scanCommit(b []byte) (repo, rev string, ok bool) {
	var typ string
	var op int64
	pos, err := scanMap(b, 0, func(key, b []byte, pos int) (int, error) {
		switch string(key) {
		case "t":
			s, next, err := readText(b, pos)
			typ = s
			return next, err
		case "op":
			major, v, next, err := readHead(b, pos)
			if major == 1 {
				op = -1 - int64(v)
			} else {
				op = int64(v)
			}
			return next, err
		}
		return skip(b, pos, 0)
	})
	if err != nil || op != 1 || typ != "#commit" {
		return "", "", false
	}
	_, err = scanMap(b, pos, func(key, b []byte, pos int) (int, error) {
		switch string(key) {
		case "repo", "rev":
			s, next, err := readText(b, pos)
			if string(key) == "repo" {
				repo = s
			} else {
				rev = s
			}
			return next, err
		}
		return skip(b, pos, 0)
	})
	return repo, rev, err == nil && repo != "" && rev != ""
}

// readHead reads a CBOR item's initial byte and argument.
func readHead(b []byte, pos int) (major byte, arg uint64, next int, err error) {
	if pos >= len(b) {
		return 0, 0, pos, errCBOR
	}
	major, info := b[pos]>>5, b[pos]&31
	pos++
	var n int
	switch {
	case info < 24:
		return major, uint64(info), pos, nil
	case info == 24:
		n = 1
	case info == 25:
		n = 2
	case info == 26:
		n = 4
	case info == 27:
		n = 8
	default: // indefinite lengths are not DAG-CBOR
		return 0, 0, pos, errCBOR
	}
	if pos+n > len(b) {
		return 0, 0, pos, errCBOR
	}
	var v [8]byte
	copy(v[8-n:], b[pos:pos+n])
	return major, binary.BigEndian.Uint64(v[:]), pos + n, nil
}

func readText(b []byte, pos int) (string, int, error) {
	major, n, pos, err := readHead(b, pos)
	if err != nil || major != 3 || uint64(len(b)-pos) < n {
		return "", pos, errCBOR
	}
	return string(b[pos : pos+int(n)]), pos + int(n), nil
}

// scanMap calls field for each key of the map at pos, which must consume
// the value; it returns the position after the map.
func scanMap(b []byte, pos int, field func(key, b []byte, pos int) (int, error)) (int, error) {
	major, n, pos, err := readHead(b, pos)
	if err != nil || major != 5 {
		return pos, errCBOR
	}
	for range n {
		major, kn, next, err := readHead(b, pos)
		if err != nil || major != 3 || uint64(len(b)-next) < kn {
			return pos, errCBOR
		}
		if pos, err = field(b[next:next+int(kn)], b, next+int(kn)); err != nil {
			return pos, err
		}
	}
	return pos, nil
}

// skip returns the position after the item at pos.
func skip(b []byte, pos, depth int) (int, error) {
	if depth > 64 {
		return pos, errCBOR
	}
	major, n, pos, err := readHead(b, pos)
	if err != nil {
		return pos, err
	}
	switch major {
	case 0, 1, 7:
		return pos, nil
	case 2, 3:
		if uint64(len(b)-pos) < n {
			return pos, errCBOR
		}
		return pos + int(n), nil
	case 4, 5:
		items := n
		if major == 5 {
			items *= 2
		}
		for range items {
			if pos, err = skip(b, pos, depth+1); err != nil {
				return pos, err
			}
		}
		return pos, nil
	case 6:
		return skip(b, pos, depth+1)
	}
	return pos, errCBOR
}
