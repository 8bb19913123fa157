package bgpwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Message types (RFC 4271 §4.1).
const (
	TypeOpen         uint8 = 1
	TypeUpdate       uint8 = 2
	TypeNotification uint8 = 3
	TypeKeepalive    uint8 = 4
)

// Path attribute type codes.
const (
	AttrOrigin  uint8 = 1
	AttrASPath  uint8 = 2
	AttrNextHop uint8 = 3
)

// Path attribute flags.
const (
	FlagOptional   uint8 = 0x80
	FlagTransitive uint8 = 0x40
	FlagPartial    uint8 = 0x20
	FlagExtLen     uint8 = 0x10
)

// ORIGIN values.
const (
	OriginIGP        uint8 = 0
	OriginEGP        uint8 = 1
	OriginIncomplete uint8 = 2
)

// HeaderLen is the length of the fixed header; MaxLen the largest message
// without the extended-message capability.
const (
	HeaderLen = 19
	MaxLen    = 4096
)

// ASTrans stands in for a 4-octet AS in the OPEN's 2-octet field.
const ASTrans = 23456

// Frame prepends the header (all-ones marker, length, type) to body.
func Frame(typ uint8, body []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(body))
	for i := 0; i < 16; i++ {
		b[i] = 0xff
	}
	binary.BigEndian.PutUint16(b[16:18], uint16(HeaderLen+len(body)))
	b[18] = typ
	return append(b, body...)
}

// Open returns an OPEN with the capabilities a modern IPv4 speaker sends:
// multiprotocol IPv4 unicast and 4-octet AS numbers.
func Open(as uint32, hold uint16, id netip.Addr) []byte {
	my := uint16(ASTrans)
	if as <= 0xffff {
		my = uint16(as)
	}
	caps := []byte{
		1, 4, 0, 1, 0, 1, // multiprotocol: AFI 1 (IPv4), SAFI 1 (unicast)
		65, 4, 0, 0, 0, 0, // 4-octet AS
	}
	binary.BigEndian.PutUint32(caps[8:12], as)
	params := append([]byte{2, byte(len(caps))}, caps...) // one capabilities parameter
	body := []byte{4, 0, 0, 0, 0}                         // version, AS, hold time
	binary.BigEndian.PutUint16(body[1:3], my)
	binary.BigEndian.PutUint16(body[3:5], hold)
	id4 := id.As4()
	body = append(body, id4[:]...)
	body = append(body, byte(len(params)))
	return Frame(TypeOpen, append(body, params...))
}

// Keepalive returns a KEEPALIVE.
func Keepalive() []byte { return Frame(TypeKeepalive, nil) }

// NotificationMsg returns a NOTIFICATION.
func NotificationMsg(code, subcode uint8, data []byte) []byte {
	return Frame(TypeNotification, append([]byte{code, subcode}, data...))
}

// Attr encodes one path attribute with the given flags; the extended
// length form is used when the value needs it (or flags ask for it).
func Attr(flags, typ uint8, value []byte) []byte {
	if len(value) > 255 {
		flags |= FlagExtLen
	}
	if flags&FlagExtLen != 0 {
		b := []byte{flags, typ, 0, 0}
		binary.BigEndian.PutUint16(b[2:4], uint16(len(value)))
		return append(b, value...)
	}
	return append([]byte{flags, typ, byte(len(value))}, value...)
}

// Origin is a well-formed ORIGIN attribute.
func Origin(v uint8) []byte { return Attr(FlagTransitive, AttrOrigin, []byte{v}) }

// ASPath is a well-formed AS_PATH of one AS_SEQUENCE of 4-octet ASes.
func ASPath(asns ...uint32) []byte {
	if len(asns) == 0 {
		return Attr(FlagTransitive, AttrASPath, nil)
	}
	v := []byte{2, byte(len(asns))} // AS_SEQUENCE
	for _, a := range asns {
		v = binary.BigEndian.AppendUint32(v, a)
	}
	return Attr(FlagTransitive, AttrASPath, v)
}

// NextHop is a well-formed IPv4 NEXT_HOP attribute.
func NextHop(a netip.Addr) []byte {
	v := a.As4()
	return Attr(FlagTransitive, AttrNextHop, v[:])
}

// NLRI encodes IPv4 prefixes as length + significant octets.
func NLRI(prefixes ...netip.Prefix) []byte {
	var b []byte
	for _, p := range prefixes {
		a := p.Masked().Addr().As4()
		b = append(b, byte(p.Bits()))
		b = append(b, a[:(p.Bits()+7)/8]...)
	}
	return b
}

// UpdateBody lays out an UPDATE body from raw parts: withdrawn routes,
// path attributes (concatenated), NLRI. attrLen is the Total Path
// Attribute Length field; a negative value means len(attrs).
func UpdateBody(withdrawn, attrs, nlri []byte, attrLen int) []byte {
	if attrLen < 0 {
		attrLen = len(attrs)
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(withdrawn)))
	b = append(b, withdrawn...)
	b = binary.BigEndian.AppendUint16(b, uint16(attrLen))
	b = append(b, attrs...)
	return append(b, nlri...)
}

// Announce returns a well-formed UPDATE announcing prefixes with origin
// IGP, the AS path and the next hop.
func Announce(nextHop netip.Addr, asPath []uint32, prefixes ...netip.Prefix) []byte {
	attrs := Concat(Origin(OriginIGP), ASPath(asPath...), NextHop(nextHop))
	return Frame(TypeUpdate, UpdateBody(nil, attrs, NLRI(prefixes...), -1))
}

// Withdraw returns an UPDATE withdrawing prefixes.
func Withdraw(prefixes ...netip.Prefix) []byte {
	return Frame(TypeUpdate, UpdateBody(NLRI(prefixes...), nil, nil, -1))
}

// Concat joins byte slices (attributes into an attribute list).
func Concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Message is one received message: its type and body (header removed).
type Message struct {
	Type uint8
	Body []byte
}

// ReadMessage reads one message, checking the marker and length.
func ReadMessage(r io.Reader) (Message, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Message{}, err
	}
	for i := 0; i < 16; i++ {
		if h[i] != 0xff {
			return Message{}, errors.New("read bgp message: bad marker")
		}
	}
	n := int(binary.BigEndian.Uint16(h[16:18]))
	if n < HeaderLen || n > 65535 {
		return Message{}, fmt.Errorf("read bgp message: bad length %d", n)
	}
	body := make([]byte, n-HeaderLen)
	if _, err := io.ReadFull(r, body); err != nil {
		return Message{}, fmt.Errorf("read bgp message body: %w", err)
	}
	return Message{Type: h[18], Body: body}, nil
}

// OpenInfo is what a test looks at in a received OPEN.
type OpenInfo struct {
	Version uint8
	AS      uint32 // the 4-octet AS when advertised, else the 2-octet field
	Hold    uint16
	ID      netip.Addr
}

// ParseOpen decodes an OPEN body (capabilities: only the 4-octet AS).
func ParseOpen(body []byte) (OpenInfo, error) {
	if len(body) < 10 {
		return OpenInfo{}, errors.New("parse open: short")
	}
	o := OpenInfo{Version: body[0], AS: uint32(binary.BigEndian.Uint16(body[1:3])),
		Hold: binary.BigEndian.Uint16(body[3:5]), ID: netip.AddrFrom4([4]byte(body[5:9]))}
	params := body[10:]
	if len(params) != int(body[9]) {
		return OpenInfo{}, errors.New("parse open: bad optional parameters length")
	}
	for len(params) >= 2 {
		typ, l := params[0], int(params[1])
		if len(params) < 2+l {
			return OpenInfo{}, errors.New("parse open: truncated parameter")
		}
		if typ == 2 { // capabilities
			caps := params[2 : 2+l]
			for len(caps) >= 2 {
				code, cl := caps[0], int(caps[1])
				if len(caps) < 2+cl {
					return OpenInfo{}, errors.New("parse open: truncated capability")
				}
				if code == 65 && cl == 4 {
					o.AS = binary.BigEndian.Uint32(caps[2:6])
				}
				caps = caps[2+cl:]
			}
		}
		params = params[2+l:]
	}
	return o, nil
}

// Notification is a received NOTIFICATION. As an error it says which.
type Notification struct {
	Code, Subcode uint8
	Data          []byte
}

// ParseNotification decodes a NOTIFICATION body.
func ParseNotification(body []byte) (Notification, error) {
	if len(body) < 2 {
		return Notification{}, errors.New("parse notification: short")
	}
	return Notification{Code: body[0], Subcode: body[1], Data: body[2:]}, nil
}

var codeNames = map[uint8]string{1: "Message Header Error", 2: "OPEN Message Error", 3: "UPDATE Message Error",
	4: "Hold Timer Expired", 5: "Finite State Machine Error", 6: "Cease"}

var subcodeNames = map[[2]uint8]string{
	{2, 2}: "Bad Peer AS", {2, 3}: "Bad BGP Identifier", {2, 7}: "Unsupported Capability",
	{3, 1}: "Malformed Attribute List", {3, 3}: "Missing Well-known Attribute", {3, 4}: "Attribute Flags Error",
	{3, 5}: "Attribute Length Error", {3, 6}: "Invalid ORIGIN Attribute", {3, 8}: "Invalid NEXT_HOP Attribute",
	{3, 11}: "Malformed AS_PATH",
	{6, 1}:  "Maximum Number of Prefixes Reached", {6, 2}: "Administrative Shutdown", {6, 3}: "Peer De-configured",
	{6, 4}: "Administrative Reset", {6, 5}: "Connection Rejected",
}

// String is "code/subcode (names)", e.g. "6/1 (Cease: Maximum Number of Prefixes Reached)".
func (n Notification) String() string {
	name := codeNames[n.Code]
	if s, ok := subcodeNames[[2]uint8{n.Code, n.Subcode}]; ok {
		name += ": " + s
	}
	return fmt.Sprintf("%d/%d (%s)", n.Code, n.Subcode, name)
}

func (n Notification) Error() string { return "bgp notification " + n.String() }
