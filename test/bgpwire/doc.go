// Package bgpwire is a tiny hand-built BGP-4 speaker for tests that must
// send what no real implementation would: malformed UPDATEs, floods, OPENs
// from peers nobody configured. It encodes messages byte by byte (RFC 4271,
// 4-octet AS numbers of RFC 6793) and decodes only what a test needs to
// look at: message types, OPENs and NOTIFICATIONs.
//
// It never dials or listens by itself: the caller hands it a connection it
// made (in the right network namespace), so the package cannot reach
// anything its test did not choose.
//
// Invariants:
//   - Attribute and UPDATE builders take and return raw bytes, so a test can
//     corrupt any length or flag after building a valid message.
//   - A Session has one reader goroutine (the owner of everything received)
//     and serializes writes; Close always ends the reader and the keepalive
//     ticker, whatever state the peer left the connection in.
package bgpwire
