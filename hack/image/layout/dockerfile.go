package layout

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Cmd  string // upper case: FROM, COPY, RUN, ...
	Args string
	Line int
}

// Stage is a FROM and the instructions after it.
type Stage struct {
	From         string // image, with global ARG defaults expanded
	Name         string // the AS name, if any
	Instructions []Instruction
}

// ParseDockerfile splits a Dockerfile into stages. It understands what
// deploy/Dockerfile uses: comments, backslash continuations and ${ARG}
// defaults declared before the first FROM.
func ParseDockerfile(r io.Reader) ([]Stage, error) {
	args := map[string]string{}
	var stages []Stage
	instrs, err := instructions(r)
	if err != nil {
		return nil, err
	}
	for _, in := range instrs {
		switch {
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			for len(f) > 1 && strings.HasPrefix(f[0], "--") { // --platform=...
				f = f[1:]
			}
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", in.Line)
			}
			st := Stage{From: expand(f[0], args)}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			} else if len(f) != 1 {
				return nil, fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", in.Line, in.Args)
			}
			stages = append(stages, st)
		case len(stages) == 0 && in.Cmd == "ARG":
			name, value, _ := strings.Cut(in.Args, "=")
			args[name] = value
		case len(stages) == 0:
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		default:
			st := &stages[len(stages)-1]
			st.Instructions = append(st.Instructions, in)
		}
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, nil
}

// LoadDockerfile parses the Dockerfile at p.
func LoadDockerfile(p string) ([]Stage, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("load Dockerfile: %w", err)
	}
	defer f.Close()
	stages, err := ParseDockerfile(f)
	if err != nil {
		return nil, fmt.Errorf("load Dockerfile %s: %w", p, err)
	}
	return stages, nil
}

func instructions(r io.Reader) ([]Instruction, error) {
	var out []Instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		body, cont := strings.CutSuffix(line, "\\")
		cur.WriteString(body + " ")
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if cur.Len() != 0 {
		return nil, fmt.Errorf("line %d: continuation at end of file", start)
	}
	return out, nil
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func expand(s string, args map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		return args[argRef.FindStringSubmatch(m)[1]]
	})
}

// DockerfileDiff lists how the final stage of stages differs from l: its
// base, commands that would add files (RUN, ADD), its entrypoint, and each
// path its COPYs write that the layout does not list with the same source
// file, or the other way round. Empty means they agree.
func (l Layout) DockerfileDiff(stages []Stage) []string {
	final := stages[len(stages)-1]
	var diffs []string
	if repo := repository(final.From); repo != l.Base {
		diffs = append(diffs, fmt.Sprintf("final stage FROM %s: want the %s image (layout base %s)", final.From, l.Base, l.Base))
	}
	copies := map[string]string{}
	var entrypoint []string
	for _, in := range final.Instructions {
		switch in.Cmd {
		case "RUN", "ADD":
			diffs = append(diffs, fmt.Sprintf("line %d: %s in the final stage: every file must come from a COPY the layout lists", in.Line, in.Cmd))
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.Args), &entrypoint); err != nil {
				diffs = append(diffs, fmt.Sprintf("line %d: ENTRYPOINT %s: want the JSON form: %v", in.Line, in.Args, err))
			}
		case "COPY":
			if err := addCopy(copies, in); err != nil {
				diffs = append(diffs, err.Error())
			}
		}
	}
	if strings.Join(entrypoint, " ") != strings.Join(l.Entrypoint, " ") {
		diffs = append(diffs, fmt.Sprintf("ENTRYPOINT %q, layout %q", entrypoint, l.Entrypoint))
	}
	want := map[string]string{}
	for _, f := range l.Files {
		want[f.Path] = sourceKey(f)
	}
	return append(diffs, compare(want, copies)...)
}

// sourceKey is what a layout file and a COPY must agree on about the
// source: a repository file by its path (a COPY from the build context), a
// built or fetched file by its name (a COPY --from a builder stage).
func sourceKey(f File) string {
	if f.Kind == SourceRepo {
		return "context " + f.Source
	}
	return "stage file " + path.Base(f.Source)
}

// addCopy records the destination path and source key of each file a COPY
// writes.
func addCopy(copies map[string]string, in Instruction) error {
	f := strings.Fields(in.Args)
	fromStage := false
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		fromStage = fromStage || strings.HasPrefix(f[0], "--from=")
		f = f[1:]
	}
	if len(f) < 2 || strings.HasPrefix(f[0], "[") {
		return fmt.Errorf("line %d: COPY %s: want SRC... DEST", in.Line, in.Args)
	}
	srcs, dest := f[:len(f)-1], f[len(f)-1]
	toDir := strings.HasSuffix(dest, "/") || len(srcs) > 1
	for _, s := range srcs {
		d := dest
		if toDir {
			d = path.Join(dest, path.Base(s))
		}
		key := "stage file " + path.Base(s)
		if !fromStage {
			key = "context " + path.Clean(s)
		}
		if _, dup := copies[d]; dup {
			return fmt.Errorf("line %d: COPY writes %s twice", in.Line, d)
		}
		copies[d] = key
	}
	return nil
}

func compare(want, got map[string]string) []string {
	var diffs []string
	for p, w := range want {
		switch g, ok := got[p]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: in the layout (%s), not copied by the Dockerfile", p, w))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s: layout has %s, Dockerfile copies %s", p, w, g))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: copied by the Dockerfile (%s), not in the layout", p, g))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// repository is an image reference's repository without registry, library
// prefix, tag or digest: docker.io/library/busybox:1.37.0 is busybox.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	ref = strings.TrimPrefix(ref, "docker.io/")
	return strings.TrimPrefix(ref, "library/")
}
