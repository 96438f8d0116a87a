package twilio

import (
	"errors"
	"testing"
)

func TestReorder(t *testing.T) {
	ids := func(rs []release) (out []int) {
		for _, r := range rs {
			if r.filler {
				out = append(out, 0)
			} else {
				out = append(out, int(r.audio[0]))
			}
		}
		return out
	}
	chunk := func(k int) []byte { return []byte{byte(k)} }
	r := newReorder(3)
	var got []int
	for _, k := range []int{2, 1, 1, 3, 5, 6, 7, 8, 4, 9} { // 4 lost until after the window
		rs, err := r.Add(uint64(k), chunk(k), 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(rs)...)
	}
	got = append(got, ids(r.Flush(0))...)
	want := []int{1, 2, 3, 0, 5, 6, 7, 8, 9}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	if r.duplicates != 2 || r.filled != 1 { // the second 1, and 4 after its gap was filled
		t.Fatalf("duplicates %d filled %d", r.duplicates, r.filled)
	}
	if _, err := r.Add(1<<40, chunk(1), 0); !errors.Is(err, ErrProtocol) {
		t.Fatalf("huge jump: %v", err)
	}
}
