package bgpwire

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Config is our side of a session.
type Config struct {
	AS   uint32
	ID   netip.Addr // BGP identifier (IPv4)
	Hold uint16     // proposed hold time in seconds; 0 means 90
	// Timeout bounds the OPEN/KEEPALIVE exchange; 0 means 10s.
	Timeout time.Duration
}

// HandshakeError says how far the OPEN exchange got before it failed.
type HandshakeError struct {
	Stage    string    // "waiting for OPEN" or "waiting for KEEPALIVE"
	PeerOpen *OpenInfo // the peer's OPEN, when it sent one
	Err      error     // a Notification, or why the connection ended
}

func (e *HandshakeError) Error() string { return fmt.Sprintf("bgp handshake: %s: %v", e.Stage, e.Err) }
func (e *HandshakeError) Unwrap() error { return e.Err }

// Session is an Established session on a connection the caller made.
type Session struct {
	Peer OpenInfo // the peer's OPEN

	conn net.Conn
	wmu  sync.Mutex // serializes writes

	mu      sync.Mutex // guards below
	notif   *Notification
	updates int
	err     error // why the reader stopped

	done      chan struct{} // closed when the reader stops
	stop      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Establish sends our OPEN on conn, waits for the peer's OPEN and
// KEEPALIVE, and returns the Established session; a reader goroutine and
// a keepalive ticker (hold/3) then run until Close. On failure conn is
// closed and the error is a *HandshakeError.
func Establish(conn net.Conn, c Config) (*Session, error) {
	if c.Hold == 0 {
		c.Hold = 90
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	fail := func(stage string, open *OpenInfo, err error) (*Session, error) {
		_ = conn.Close()
		return nil, &HandshakeError{Stage: stage, PeerOpen: open, Err: err}
	}
	_ = conn.SetDeadline(time.Now().Add(c.Timeout))
	if _, err := conn.Write(Open(c.AS, c.Hold, c.ID)); err != nil {
		return fail("sending OPEN", nil, err)
	}
	var peer *OpenInfo
	for peer == nil {
		m, err := ReadMessage(conn)
		if err != nil {
			return fail("waiting for OPEN", nil, err)
		}
		switch m.Type {
		case TypeOpen:
			o, err := ParseOpen(m.Body)
			if err != nil {
				return fail("waiting for OPEN", nil, err)
			}
			peer = &o
		case TypeNotification:
			n, _ := ParseNotification(m.Body)
			return fail("waiting for OPEN", nil, n)
		}
	}
	if _, err := conn.Write(Keepalive()); err != nil {
		return fail("sending KEEPALIVE", peer, err)
	}
	for {
		m, err := ReadMessage(conn)
		if err != nil {
			return fail("waiting for KEEPALIVE", peer, err)
		}
		if m.Type == TypeNotification {
			n, _ := ParseNotification(m.Body)
			return fail("waiting for KEEPALIVE", peer, n)
		}
		if m.Type == TypeKeepalive {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	s := &Session{Peer: *peer, conn: conn, done: make(chan struct{}), stop: make(chan struct{})}
	hold := min(c.Hold, peer.Hold)
	s.wg.Add(2)
	go s.read()
	go s.keepalive(time.Duration(max(hold/3, 1)) * time.Second)
	return s, nil
}

// read is the only reader of the connection after the handshake.
func (s *Session) read() {
	defer s.wg.Done()
	defer close(s.done)
	for {
		m, err := ReadMessage(s.conn)
		s.mu.Lock()
		if err != nil {
			s.err = err
			s.mu.Unlock()
			return
		}
		switch m.Type {
		case TypeUpdate:
			s.updates++
		case TypeNotification:
			if n, perr := ParseNotification(m.Body); perr == nil && s.notif == nil {
				s.notif = &n
			}
		}
		s.mu.Unlock()
	}
}

func (s *Session) keepalive(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.done:
			return
		case <-t.C:
			_ = s.Send(Keepalive())
		}
	}
}

// Send writes one message (or any bytes) to the peer.
func (s *Session) Send(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.conn.Write(b); err != nil {
		return fmt.Errorf("send to bgp peer: %w", err)
	}
	return nil
}

// Done is closed when the peer ends the session (or Close does).
func (s *Session) Done() <-chan struct{} { return s.done }

// Notification returns the first NOTIFICATION the peer sent, if any.
func (s *Session) Notification() (Notification, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notif == nil {
		return Notification{}, false
	}
	return *s.notif, true
}

// Updates counts the UPDATEs received since the handshake.
func (s *Session) Updates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates
}

// Err says why the reader stopped (nil while it runs).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ErrClosed is returned by WaitClosed when the session did not end.
var ErrClosed = errors.New("bgp session still open")

// WaitClosed waits up to d for the peer to end the session and returns
// its NOTIFICATION, if it sent one.
func (s *Session) WaitClosed(d time.Duration) (Notification, bool, error) {
	select {
	case <-s.done:
		n, ok := s.Notification()
		return n, ok, nil
	case <-time.After(d):
		return Notification{}, false, ErrClosed
	}
}

// Close sends a Cease (administrative shutdown) unless the session has
// already ended, closes the connection and waits for the goroutines.
func (s *Session) Close() error {
	var err error
	s.closeOnce.Do(func() {
		select {
		case <-s.done:
		default:
			_ = s.Send(NotificationMsg(6, 2, nil))
		}
		close(s.stop)
		err = s.conn.Close()
		s.wg.Wait()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
