package bgpwire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestAnnounceBytes(t *testing.T) {
	got := Announce(netip.MustParseAddr("10.0.0.100"), []uint32{65100}, netip.MustParsePrefix("198.51.100.0/24"))
	want := "ffffffffffffffffffffffffffffffff" + "002f" + "02" + // header: length 47, UPDATE
		"0000" + "0014" + // no withdrawals, 20 octets of attributes
		"40010100" + // ORIGIN IGP
		"4002060201" + "0000fe4c" + // AS_PATH AS_SEQUENCE [65100]
		"400304" + "0a000064" + // NEXT_HOP 10.0.0.100
		"18c63364" // 198.51.100.0/24
	if hex.EncodeToString(got) != want {
		t.Errorf("Announce =\n%x\nwant\n%s", got, want)
	}
	m, err := ReadMessage(bytes.NewReader(got))
	if err != nil || m.Type != TypeUpdate || len(m.Body) != len(got)-HeaderLen {
		t.Errorf("ReadMessage = %+v, %v", m, err)
	}
}

func TestOpenRoundTrip(t *testing.T) {
	for _, as := range []uint32{65100, 4200000001} {
		m, err := ReadMessage(bytes.NewReader(Open(as, 30, netip.MustParseAddr("192.0.2.1"))))
		if err != nil {
			t.Fatal(err)
		}
		o, err := ParseOpen(m.Body)
		want := OpenInfo{Version: 4, AS: as, Hold: 30, ID: netip.MustParseAddr("192.0.2.1")}
		if err != nil || o != want {
			t.Errorf("AS %d: ParseOpen = %+v, %v; want %+v", as, o, err, want)
		}
	}
}

func TestAttrExtendedLength(t *testing.T) {
	a := Attr(FlagTransitive, AttrASPath, make([]byte, 300))
	if a[0] != FlagTransitive|FlagExtLen || a[2] != 1 || a[3] != 44 || len(a) != 304 {
		t.Errorf("300-octet attribute header = %x", a[:4])
	}
}

// fakePeer answers the OPEN exchange on c (or rejects the OPEN with
// rejectWith), then sends NOTIFICATION 6/1 and closes, as GoBGP does.
func fakePeer(t *testing.T, c net.Conn, rejectWith *Notification) {
	defer c.Close()
	m, err := ReadMessage(c)
	if err != nil || m.Type != TypeOpen {
		t.Errorf("peer: first message %+v, %v; want OPEN", m, err)
		return
	}
	if rejectWith != nil {
		_, _ = c.Write(NotificationMsg(rejectWith.Code, rejectWith.Subcode, nil))
		return
	}
	_, _ = c.Write(Open(64512, 9, netip.MustParseAddr("10.0.0.11")))
	if m, err := ReadMessage(c); err != nil || m.Type != TypeKeepalive {
		t.Errorf("peer: second message %+v, %v; want KEEPALIVE", m, err)
		return
	}
	_, _ = c.Write(Keepalive())
	_, _ = c.Write(NotificationMsg(6, 1, nil))
}

func TestEstablishAndNotification(t *testing.T) {
	a, b := net.Pipe()
	go fakePeer(t, b, nil)
	s, err := Establish(a, Config{AS: 65100, ID: netip.MustParseAddr("10.0.0.100"), Hold: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Peer.AS != 64512 || s.Peer.Hold != 9 {
		t.Errorf("peer OPEN = %+v", s.Peer)
	}
	n, ok, err := s.WaitClosed(5 * time.Second)
	if err != nil || !ok || n.Code != 6 || n.Subcode != 1 {
		t.Errorf("WaitClosed = %v, %v, %v; want the peer's 6/1", n, ok, err)
	}
	if got := n.String(); got != "6/1 (Cease: Maximum Number of Prefixes Reached)" {
		t.Errorf("String = %q", got)
	}
}

func TestEstablishRejected(t *testing.T) {
	a, b := net.Pipe()
	go fakePeer(t, b, &Notification{Code: 2, Subcode: 2})
	_, err := Establish(a, Config{AS: 65100, ID: netip.MustParseAddr("10.0.0.100")})
	var he *HandshakeError
	var n Notification
	if !errors.As(err, &he) || he.Stage != "waiting for OPEN" || !errors.As(err, &n) || n.Code != 2 || n.Subcode != 2 {
		t.Errorf("Establish = %v; want a handshake error carrying NOTIFICATION 2/2", err)
	}
}
