package labnet

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Diagram draws the topology as text: routers that join segments (a spine)
// on top, one column per L2 segment with its host (ToR, reflector or
// switch), its nodes (address, AS) and their pods.
func Diagram(spec Spec, pods []*Pod) string {
	var b strings.Builder
	hosts := map[string]bool{}
	for _, g := range spec.Segments {
		hosts[g.Host] = true
	}
	for _, r := range spec.Routers {
		if !hosts[r.Name] {
			fmt.Fprintf(&b, "%s\n", box([]string{fmt.Sprintf("%s  %s  AS %d", r.Name, strings.ToUpper(string(r.Kind)), r.AS), "router-id " + r.RouterID.String()}))
		}
	}
	var cols [][]string
	for _, g := range spec.Segments {
		var col []string
		for _, k := range spec.Links {
			if k.B == g.Host {
				col = append(col, "    |  "+k.A+" "+k.AAddr.String(), "    |  "+k.B+" "+k.BAddr.String())
			}
		}
		head := []string{g.Host}
		if r, ok := spec.Router(g.Host); ok {
			head[0] = fmt.Sprintf("%s  %s  AS %d", r.Name, strings.ToUpper(string(r.Kind)), r.AS)
		}
		head = append(head, fmt.Sprintf("%s %s", g.Name, g.CIDR))
		if g.Gateway.IsValid() {
			head = append(head, fmt.Sprintf("%s on %s", g.Gateway, g.Bridge()))
		} else {
			head = append(head, "bridge "+g.Bridge())
		}
		col = append(col, strings.Split(box(head), "\n")...)
		for _, n := range spec.Nodes {
			if n.Segment != g.Name {
				continue
			}
			as := "cluster AS"
			if n.AS != 0 {
				as = fmt.Sprintf("AS %d", n.AS)
			}
			col = append(col, "    |", fmt.Sprintf("    +- %s", n.Name), fmt.Sprintf("    |    eth0 %s  %s", n.Addr, as))
			for _, p := range pods {
				if p.Node == n.Name {
					col = append(col, fmt.Sprintf("    |      pod %-14s %s", p.Name, p.IP))
				}
			}
		}
		cols = append(cols, col)
	}
	width := 0
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c))
		for _, l := range c {
			width = max(width, utf8.RuneCountInString(l))
		}
	}
	for i := 0; i < rows; i++ {
		var line strings.Builder
		for _, c := range cols {
			cell := ""
			if i < len(c) {
				cell = c[i]
			}
			line.WriteString(cell + strings.Repeat(" ", width+3-utf8.RuneCountInString(cell)))
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}

// box frames lines.
func box(lines []string) string {
	w := 0
	for _, l := range lines {
		w = max(w, utf8.RuneCountInString(l))
	}
	var b strings.Builder
	b.WriteString("+" + strings.Repeat("-", w+2) + "+\n")
	for _, l := range lines {
		b.WriteString("| " + l + strings.Repeat(" ", w-utf8.RuneCountInString(l)) + " |\n")
	}
	b.WriteString("+" + strings.Repeat("-", w+2) + "+")
	return b.String()
}
