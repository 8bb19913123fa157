package layout

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// repo is the repository root, from this package's directory.
var repo = filepath.Join("..", "..", "..")

// TestDockerfileMatchesLayout is the check the layout's header promises:
// deploy/Dockerfile's final stage builds the image deploy/image-layout
// describes.
func TestDockerfileMatchesLayout(t *testing.T) {
	l, err := Load(filepath.Join(repo, "deploy", "image-layout"))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := LoadDockerfile(filepath.Join(repo, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if diffs := l.DockerfileDiff(stages); len(diffs) != 0 {
		t.Errorf("deploy/Dockerfile's final stage differs from deploy/image-layout:\n%s", strings.Join(diffs, "\n"))
	}
	if len(l.Files) < 6 {
		t.Errorf("layout lists %d files, want at least the 6 of the gingham image", len(l.Files))
	}
}

func TestParse(t *testing.T) {
	l, err := Parse(strings.NewReader(`# comment
base busybox
entrypoint /bin/app --flag   # trailing comment
file /bin/app 0755 bin:app
file /etc/app.conf 0644 repo:deploy/app.conf
file /opt/cni/bin/portmap 0755 host:/usr/lib/cni/portmap
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Layout{
		Base:       "busybox",
		Entrypoint: []string{"/bin/app", "--flag"},
		Files: []File{
			{Path: "/bin/app", Mode: 0o755, Kind: SourceBin, Source: "app"},
			{Path: "/etc/app.conf", Mode: 0o644, Kind: SourceRepo, Source: "deploy/app.conf"},
			{Path: "/opt/cni/bin/portmap", Mode: 0o755, Kind: SourceHost, Source: "/usr/lib/cni/portmap"},
		},
	}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRejects(t *testing.T) {
	const head = "base busybox\nentrypoint /bin/app\nfile /bin/app 0755 bin:app\n"
	for _, tc := range []struct{ name, text, want string }{
		{"unknown base", "base alpine\n", "base"},
		{"unknown directive", head + "copy /a /b\n", `unknown directive "copy"`},
		{"relative path", head + "file bin/x 0755 bin:x\n", "not a clean absolute path"},
		{"unclean path", head + "file /bin/../x 0755 bin:x\n", "not a clean absolute path"},
		{"mode not octal", head + "file /bin/x 755x bin:x\n", "not octal"},
		{"mode too wide", head + "file /bin/x 17777 bin:x\n", "not octal"},
		{"no source kind", head + "file /bin/x 0755 x\n", "KIND:SOURCE"},
		{"unknown source kind", head + "file /bin/x 0755 url:x\n", `unknown source kind "url"`},
		{"bin source with slash", head + "file /bin/x 0755 bin:a/x\n", "plain name"},
		{"repo source outside", head + "file /bin/x 0755 repo:../x\n", "inside the repository"},
		{"host source relative", head + "file /bin/x 0755 host:usr/x\n", "not absolute"},
		{"path twice", head + "file /bin/app 0755 bin:app\n", "listed twice"},
		{"no base", "entrypoint /bin/app\nfile /bin/app 0755 bin:app\n", "no base"},
		{"no entrypoint", "base busybox\nfile /bin/app 0755 bin:app\n", "no entrypoint"},
		{"entrypoint not a file", "base busybox\nentrypoint /bin/other\nfile /bin/app 0755 bin:app\n", "not a file of the layout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDockerfileDiff(t *testing.T) {
	l := Layout{
		Base:       "busybox",
		Entrypoint: []string{"/usr/local/bin/app"},
		Files: []File{
			{Path: "/usr/local/bin/app", Mode: 0o755, Kind: SourceBin, Source: "app"},
			{Path: "/usr/local/bin/ctl", Mode: 0o755, Kind: SourceBin, Source: "ctl"},
			{Path: "/usr/local/bin/install", Mode: 0o755, Kind: SourceRepo, Source: "deploy/install.sh"},
			{Path: "/opt/cni/bin/portmap", Mode: 0o755, Kind: SourceHost, Source: "/usr/lib/cni/portmap"},
		},
	}
	const build = "ARG TAG=1.37.0-musl\nFROM golang:1.26 AS build\nRUN go build -o /out/ ./...\nFROM alpine AS cni\nRUN wget x\n"
	const good = build + `FROM --platform=linux/amd64 busybox:${TAG}
COPY --from=build /out/app \
     /out/ctl /usr/local/bin/
COPY --from=cni /tmp/portmap /opt/cni/bin/portmap
COPY deploy/install.sh /usr/local/bin/install
ENTRYPOINT ["/usr/local/bin/app"]
`
	for _, tc := range []struct {
		name       string
		dockerfile string
		want       []string
	}{
		{"agrees", good, nil},
		{"other base", strings.Replace(good, "busybox:${TAG}", "alpine:3.21", 1),
			[]string{"final stage FROM alpine:3.21: want the busybox image (layout base busybox)"}},
		{"package install", strings.Replace(good, "ENTRYPOINT", "RUN apk add ca-certificates\nENTRYPOINT", 1),
			[]string{"line 11: RUN in the final stage: every file must come from a COPY the layout lists"}},
		{"extra file", strings.Replace(good, "ENTRYPOINT", "COPY --from=build /out/extra /usr/bin/extra\nENTRYPOINT", 1),
			[]string{"/usr/bin/extra: copied by the Dockerfile (stage file extra), not in the layout"}},
		{"missing file", strings.Replace(good, "COPY --from=cni /tmp/portmap /opt/cni/bin/portmap\n", "", 1),
			[]string{"/opt/cni/bin/portmap: in the layout (stage file portmap), not copied by the Dockerfile"}},
		{"other source", strings.Replace(good, "deploy/install.sh", "hack/install.sh", 1),
			[]string{"/usr/local/bin/install: layout has context deploy/install.sh, Dockerfile copies context hack/install.sh"}},
		{"other entrypoint", strings.Replace(good, `["/usr/local/bin/app"]`, `["/usr/local/bin/ctl"]`, 1),
			[]string{`ENTRYPOINT ["/usr/local/bin/ctl"], layout ["/usr/local/bin/app"]`}},
		{"shell entrypoint", strings.Replace(good, `["/usr/local/bin/app"]`, `/usr/local/bin/app`, 1),
			[]string{
				"line 11: ENTRYPOINT /usr/local/bin/app: want the JSON form: invalid character '/' looking for beginning of value",
				`ENTRYPOINT [], layout ["/usr/local/bin/app"]`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stages, err := ParseDockerfile(strings.NewReader(tc.dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, l.DockerfileDiff(stages)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRepository(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox":                          "busybox",
		"busybox:1.37.0-musl":              "busybox",
		"docker.io/library/busybox:1.37.0": "busybox",
		"registry:5000/x/busybox@sha256:0": "registry:5000/x/busybox",
		"registry.k8s.io/pause:3.10.2":     "registry.k8s.io/pause",
	} {
		if got := repository(ref); got != want {
			t.Errorf("repository(%q) = %q, want %q", ref, got, want)
		}
	}
}
