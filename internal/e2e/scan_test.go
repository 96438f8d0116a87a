package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/ingest"
)

// A haystack is one place the scan reads: a Redis key, a JetStream message, a KV
// entry, an object, a file on disk, the logs.
type haystack struct {
	where string
	data  []byte
}

// needles are what must not be kept: transcript words (lower case) and 64-byte runs
// of the audio's PCM, held as rolling hashes of every sample-aligned window.
type needles struct {
	words []string
	pcm   [][]byte
	win   map[uint64]hit
}

type hit struct {
	rec, off int
}

const (
	winLen  = 64
	hashMul = 1099511628211
)

var nonLetters = regexp.MustCompile(`[^a-z]+`)

// transcriptWords normalises text (lower case, letters only) and keeps the distinct
// words of at least 5 letters.
func transcriptWords(texts ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range texts {
		for _, w := range strings.Fields(nonLetters.ReplaceAllString(strings.ToLower(t), " ")) {
			if len(w) >= 5 && !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	sort.Strings(out)
	return out
}

// wavPCM returns the PCM bytes of a 16 kHz mono 16-bit WAV file (its data chunk), as
// the client sends them and the gateway and workers carry them.
func wavPCM(t *testing.T, wav []byte) []byte {
	t.Helper()
	f, chans, err := ingest.ReadWAV(bytes.NewReader(wav))
	if err != nil {
		t.Fatal(err)
	}
	if f.SampleRate != 16000 || len(chans) != 1 {
		t.Fatalf("want 16 kHz mono, got %d Hz, %d channels", f.SampleRate, len(chans))
	}
	for off := 12; off+8 <= len(wav); {
		id, size := string(wav[off:off+4]), int(binary.LittleEndian.Uint32(wav[off+4:off+8]))
		if id == "data" {
			return wav[off+8 : min(off+8+size, len(wav))]
		}
		off += 8 + size + size%2
	}
	t.Fatal("WAV without a data chunk")
	return nil
}

func newNeedles(words []string, pcm ...[]byte) *needles {
	n := &needles{words: words, pcm: pcm, win: map[uint64]hit{}}
	for r, p := range pcm {
		for off := 0; off+winLen <= len(p); off += 2 {
			w := p[off : off+winLen]
			if !informative(w) {
				continue
			}
			n.win[hashOf(w)] = hit{r, off}
		}
	}
	return n
}

// informative rejects near-silent or constant windows (a run of zeros would match
// any padding on disk); real speech uses many distinct byte values.
func informative(w []byte) bool {
	var seen [256]bool
	k := 0
	for _, b := range w {
		if !seen[b] {
			seen[b] = true
			k++
		}
	}
	return k >= 16
}

func hashOf(w []byte) uint64 {
	var h uint64
	for _, b := range w {
		h = h*hashMul + uint64(b)
	}
	return h
}

// find reports what of n is in data: the transcript words (case-insensitive) and
// whether any 64-byte run of the audio occurs (at any byte offset, rolling hash,
// verified byte for byte).
func (n *needles) find(data []byte) (words []string, audioAt int) {
	low := bytes.ToLower(data)
	for _, w := range n.words {
		if bytes.Contains(low, []byte(w)) {
			words = append(words, w)
		}
	}
	audioAt = -1
	if len(n.win) == 0 || len(data) < winLen {
		return words, audioAt
	}
	var pow uint64 = 1
	for range winLen {
		pow *= hashMul
	}
	h := hashOf(data[:winLen])
	for i := 0; ; i++ {
		if x, ok := n.win[h]; ok && bytes.Equal(data[i:i+winLen], n.pcm[x.rec][x.off:x.off+winLen]) {
			return words, i
		}
		if i+winLen >= len(data) {
			break
		}
		h = h*hashMul + uint64(data[i+winLen]) - pow*uint64(data[i])
	}
	return words, audioAt
}

// scanRedis reads every key: its name, type and value dumped by type.
func scanRedis(ctx context.Context, t *testing.T, rdb *redis.Client) []haystack {
	t.Helper()
	var out []haystack
	iter := rdb.Scan(ctx, 0, "*", 500).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s\n", k, typ)
		switch typ {
		case "string":
			v, _ := rdb.Get(ctx, k).Bytes()
			b.Write(v)
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				fmt.Fprintf(&b, "%s=%s\n", f, v)
			}
		case "list":
			for _, v := range rdb.LRange(ctx, k, 0, -1).Val() {
				fmt.Fprintln(&b, v)
			}
		case "set":
			for _, v := range rdb.SMembers(ctx, k).Val() {
				fmt.Fprintln(&b, v)
			}
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				fmt.Fprintf(&b, "%v %v\n", z.Member, z.Score)
			}
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				fmt.Fprintf(&b, "%s %v\n", m.ID, m.Values)
			}
		case "none":
			continue // expired between SCAN and TYPE
		default:
			t.Fatalf("redis key %s has type %s the scan does not read", k, typ)
		}
		out = append(out, haystack{"redis " + k, b.Bytes()})
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// scanJetStream reads every message of every stream (KV buckets and object stores
// are streams too), then every KV entry and every object through their own APIs.
func scanJetStream(ctx context.Context, t *testing.T, js jetstream.JetStream) (out []haystack, streams []string) {
	t.Helper()
	l := js.ListStreams(ctx)
	var infos []*jetstream.StreamInfo
	for si := range l.Info() {
		infos = append(infos, si)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	for _, si := range infos {
		streams = append(streams, si.Config.Name)
		s, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := si.State.FirstSeq; seq > 0 && seq <= si.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("stream %s seq %d: %v", si.Config.Name, seq, err)
			}
			var b bytes.Buffer
			fmt.Fprintf(&b, "%s %v\n", m.Subject, m.Header)
			b.Write(m.Data)
			out = append(out, haystack{fmt.Sprintf("stream %s #%d (%s)", si.Config.Name, seq, m.Subject), b.Bytes()})
		}
	}
	for name := range js.KeyValueStoreNames(ctx).Name() {
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range keys.Keys() {
			e, err := kv.Get(ctx, k)
			if err != nil {
				continue // expired or purged meanwhile
			}
			out = append(out, haystack{"kv " + name + " " + k, append([]byte(k+"\n"), e.Value()...)})
		}
	}
	for name := range js.ObjectStoreNames(ctx).Name() {
		obs, err := js.ObjectStore(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := obs.List(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
			t.Fatal(err)
		}
		for _, o := range objs {
			b, err := obs.GetBytes(ctx, o.Name)
			if err != nil {
				continue
			}
			out = append(out, haystack{"object " + name + " " + o.Name, b})
		}
	}
	return out, streams
}

// scanFiles reads every regular file under dirs, raw bytes.
func scanFiles(t *testing.T, dirs ...string) []haystack {
	t.Helper()
	var out []haystack
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking (JetStream compaction)
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			out = append(out, haystack{"file " + p, b})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// privScan is everything the privacy test reads.
type privScan struct {
	haystacks []haystack
	streams   []string
}

func privScanAll(t *testing.T, rdb *redis.Client, natsURL string, logs string, dirs ...string) privScan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(natsURL, nats.Name("privacy-scan"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var s privScan
	s.haystacks = append(s.haystacks, scanRedis(ctx, t, rdb)...)
	hs, streams := scanJetStream(ctx, t, js)
	s.haystacks = append(s.haystacks, hs...)
	s.streams = streams
	s.haystacks = append(s.haystacks, scanFiles(t, dirs...)...)
	s.haystacks = append(s.haystacks, haystack{"serve logs", []byte(logs)})
	return s
}

// found lists "where: what" for every haystack holding a needle; match, if set,
// limits the haystacks looked at.
func (s privScan) found(n *needles, match func(where string) bool) []string {
	var out []string
	for _, h := range s.haystacks {
		if match != nil && !match(h.where) {
			continue
		}
		words, at := n.find(h.data)
		if len(words) > 0 {
			out = append(out, fmt.Sprintf("%s: words %v", h.where, words))
		}
		if at >= 0 {
			out = append(out, fmt.Sprintf("%s: audio bytes at offset %d", h.where, at))
		}
	}
	return out
}

// count is how many haystacks match where.
func (s privScan) count(match func(string) bool) int {
	n := 0
	for _, h := range s.haystacks {
		if match(h.where) {
			n++
		}
	}
	return n
}

func TestNeedleFinder(t *testing.T) {
	pcm := make([]byte, 4000)
	for i := range pcm {
		pcm[i] = byte(i*7 + i/3)
	}
	n := newNeedles([]string{"americans"}, pcm)
	hay := append([]byte("xx AMERICANS yy"), pcm[1000:1000+winLen]...)
	hay = append(hay, "tail"...)
	if words, at := n.find(hay); len(words) != 1 || at != 15 {
		t.Fatalf("words %v at %d; want [americans] at 15", words, at)
	}
	if _, at := n.find(append([]byte("zz"), pcm[1000:1000+winLen-1]...)); at != -1 {
		t.Fatalf("63 bytes of audio matched at %d", at)
	}
	if words, at := n.find(make([]byte, 5000)); len(words) != 0 || at != -1 {
		t.Fatalf("zeros matched: %v %d", words, at)
	}
}
