package result

import (
	"testing"
)

func TestStatOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Stat
	}{
		{nil, Stat{}},
		{[]float64{3}, Stat{3, 3, 3, 1}},
		{[]float64{5, 1, 3}, Stat{3, 1, 5, 3}},
		{[]float64{4, 1, 2, 3}, Stat{2.5, 1, 4, 4}},
	} {
		if got := StatOf(c.in); got != c.want {
			t.Errorf("StatOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestWriteReadDirOrdersByBench(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"B10", "B2", "B4"} {
		f := File{Bench: b, Figures: []Figure{{Bench: b, Name: "x", Gingham: StatOf([]float64{1, 2, 3})}}}
		if err := f.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	files, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Bench)
	}
	if len(got) != 3 || got[0] != "B2" || got[1] != "B4" || got[2] != "B10" {
		t.Fatalf("order = %v", got)
	}
	if files[0].Figures[0].Gingham.Median != 2 {
		t.Fatalf("round trip lost the stat: %+v", files[0].Figures[0])
	}
	if (&File{}).Write(dir) == nil {
		t.Fatal("a file without bench was written")
	}
}
