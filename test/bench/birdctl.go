package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// birdCtl is a client of BIRD's control socket that keeps one connection
// open, so that an observer can ask a BIRD every few milliseconds without
// starting a birdc process each time (B3's monitor, B5's mesh).
//
// BIRD answers a command with lines "dddd-text" (more follow), " text"
// (continuation of the previous code) and a last line "dddd text"; codes
// 8xxx and 9xxx are errors.
type birdCtl struct {
	path string
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// dialBird connects to the control socket at path, retrying until BIRD
// has created it or ctx ends, and reads the greeting.
func dialBird(ctx context.Context, path string) (*birdCtl, error) {
	for {
		b, err := tryDialBird(path)
		if err == nil {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to BIRD at %s: %w (last error %v)", path, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tryDialBird(path string) (*birdCtl, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	b := &birdCtl{path: path, conn: c, r: bufio.NewReader(c)}
	if _, err := b.read(); err != nil {
		c.Close()
		return nil, fmt.Errorf("BIRD greeting at %s: %w", path, err)
	}
	return b, nil
}

// read reads one reply and returns its text without the codes.
func (b *birdCtl) read() (string, error) {
	_ = b.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var out strings.Builder
	for {
		line, err := b.r.ReadString('\n')
		if err != nil {
			return out.String(), err
		}
		line = strings.TrimRight(line, "\n")
		if len(line) >= 5 && isCode(line[:4]) && (line[4] == ' ' || line[4] == '-') {
			code, text := line[:4], line[5:]
			out.WriteString(text)
			out.WriteByte('\n')
			if line[4] == ' ' {
				if code[0] == '8' || code[0] == '9' {
					return out.String(), fmt.Errorf("bird: %s %s", code, text)
				}
				return out.String(), nil
			}
			continue
		}
		out.WriteString(strings.TrimPrefix(line, " "))
		out.WriteByte('\n')
	}
}

func isCode(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Cmd sends one command and returns the reply text.
func (b *birdCtl) Cmd(cmd string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return "", errors.New("bird control connection closed")
	}
	if _, err := fmt.Fprintf(b.conn, "%s\n", cmd); err != nil {
		return "", fmt.Errorf("bird %q: %w", cmd, err)
	}
	out, err := b.read()
	if err != nil {
		return out, fmt.Errorf("bird %q: %w", cmd, err)
	}
	return out, nil
}

// Close closes the connection.
func (b *birdCtl) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}

// protocolStates returns the state column ("Established", "Active", ...
// for BGP; "up"/"down" otherwise) of every protocol.
func (b *birdCtl) protocolStates() (map[string]string, error) {
	out, err := b.Cmd("show protocols")
	if err != nil {
		return nil, err
	}
	return parseProtocolStates(out), nil
}

func parseProtocolStates(out string) map[string]string {
	states := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "Name" {
			continue
		}
		states[f[0]] = f[3]
		if f[1] == "BGP" {
			// Name Proto Table State Since Info...: the BGP state is the
			// first word of Info (Since may take one or two words).
			states[f[0]] = "Down"
			for _, w := range f[4:] {
				if bgpStates[w] {
					states[f[0]] = w
					break
				}
			}
		}
	}
	return states
}

var bgpStates = map[string]bool{"Idle": true, "Connect": true, "Active": true, "OpenSent": true,
	"OpenConfirm": true, "Established": true, "Close": true}

var importedRE = regexp.MustCompile(`Routes:\s+(\d+) imported`)

// imported is the number of routes a protocol has imported (its channel's
// "Routes: N imported"), 0 when the protocol is down.
func (b *birdCtl) imported(proto string) (int, error) {
	out, err := b.Cmd("show protocols all " + proto)
	if err != nil {
		return 0, err
	}
	m := importedRE.FindStringSubmatch(out)
	if m == nil {
		return 0, nil
	}
	return strconv.Atoi(m[1])
}

// waitStates polls until every named protocol is in state want.
func (b *birdCtl) waitStates(ctx context.Context, want string, protos ...string) error {
	var last map[string]string
	for {
		states, err := b.protocolStates()
		if err == nil {
			last = states
			ok := true
			for _, p := range protos {
				ok = ok && states[p] == want
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			got := map[string]string{}
			for _, p := range protos {
				got[p] = last[p]
			}
			return fmt.Errorf("BIRD %s: wait for %v %s: %w (states %v, last error %v)", b.path, protos, want, ctx.Err(), got, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
