package models

import (
	"fmt"
	"sort"
	"strings"
)

// SileroFile is the Silero VAD's file in the model directory (catalog "silero-v6.2.0").
const SileroFile = "ggml-silero-v6.2.0.bin"

// Kind says what a model does.
type Kind string

// Model kinds.
const (
	KindASR Kind = "asr"
	KindVAD Kind = "vad"
	// KindTurn: the end-of-turn model of /v2/listen. It is not a ggml file and not in
	// the model directory: make turn-model installs it (scripts/smartturn.sh).
	KindTurn Kind = "turn"
)

// Card describes one named model. Numbers come from the sources named in
// its fields; where none was found the field is zero and a note says so.
type Card struct {
	Name          string  `json:"name"`
	Kind          Kind    `json:"kind"`
	Languages     string  `json:"languages"` // "en" or "multilingual (99)"
	Params        string  `json:"params"`    // e.g. "39M"
	File          string  `json:"file"`
	URL           string  `json:"url"`
	SizeBytes     int64   `json:"size_bytes,omitempty"`
	SHA256        string  `json:"sha256,omitempty"`
	ChecksumNote  string  `json:"checksum_note"`
	Quantization  string  `json:"quantization"`             // f16, q5_0, q5_1, q8_0
	RelativeSpeed float64 `json:"relative_speed,omitempty"` // vs large, OpenAI README (A100)
	WER           float64 `json:"wer,omitempty"`            // percent
	WERSource     string  `json:"wer_source"`
	MemoryMB      int     `json:"memory_mb,omitempty"` // whisper.cpp README "Memory usage" table
	MemoryNote    string  `json:"memory_note,omitempty"`
	Synthetic     bool    `json:"synthetic"`
	// Licence of the weights, and Measured: quality and speed measured here (make
	// model-cards), nil for a model not measured.
	Licence  string    `json:"licence,omitempty"`
	Measured *Measured `json:"measured,omitempty"`
}

const (
	hfBase = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/"
	// Sizes and sha256 of the ggerganov/whisper.cpp Hugging Face files are
	// the Git LFS object ids as pinned (at HF revision 5359861c…) by
	// third-party catalogs found by search; the f16 ones agree across
	// several independent projects. whisper.cpp's models/README.md
	// publishes SHA-1 only. Pull verifies whatever is listed here.
	lfsNote = "sha256 = Hugging Face LFS oid, from third-party pinned catalogs (not published by whisper.cpp, whose README lists SHA-1 only)"
	werNote = "not recorded: no verified source at hand (OpenAI's paper reports LibriSpeech WER per size; fill in from its Appendix D)"
)

type sizeInfo struct {
	params  string
	speed   float64 // OpenAI whisper README "Relative speed"
	memMB   int     // whisper.cpp README "Memory usage" (f16)
	sha1    string  // whisper.cpp models/README.md
	english bool
}

// asr lists the published ggml files: name → (size bytes, sha256).
var asrFiles = []struct {
	name   string
	size   int64
	sha256 string
}{
	{"tiny", 77691713, "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21"},
	{"tiny-q5_1", 32152673, "818710568da3ca15689e31a743197b520007872ff9576237bda97bd1b469c3d7"},
	{"tiny-q8_0", 43537433, "c2085835d3f50733e2ff6e4b41ae8a2b8d8110461e18821b09a15c40c42d1cca"},
	{"tiny.en", 77704715, "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f"},
	{"tiny.en-q5_1", 32166155, "c77c5766f1cef09b6b7d47f21b546cbddd4157886b3b5d6d4f709e91e66c7c2b"},
	{"tiny.en-q8_0", 43550795, "5bc2b3860aa151a4c6e7bb095e1fcce7cf12c7b020ca08dcec0c6d018bb7dd94"},
	{"base", 147951465, "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe"},
	{"base-q5_1", 59707625, "422f1ae452ade6f30a004d7e5c6a43195e4433bc370bf23fac9cc591f01a8898"},
	{"base-q8_0", 81768585, "c577b9a86e7e048a0b7eada054f4dd79a56bbfa911fbdacf900ac5b567cbb7d9"},
	{"base.en", 147964211, "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002"},
	{"base.en-q5_1", 59721011, "4baf70dd0d7c4247ba2b81fafd9c01005ac77c2f9ef064e00dcf195d0e2fdd2f"},
	{"base.en-q8_0", 81781811, "a4d4a0768075e13cfd7e19df3ae2dbc4a68d37d36a7dad45e8410c9a34f8c87e"},
	{"small", 487601967, "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b"},
	{"small-q5_1", 190085487, "ae85e4a935d7a567bd102fe55afc16bb595bdb618e11b2fc7591bc08120411bb"},
	{"small-q8_0", 264464607, "49c8fb02b65e6049d5fa6c04f81f53b867b5ec9540406812c643f177317f779f"},
	{"small.en", 487614201, "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d"},
	{"small.en-q5_1", 190098681, "bfdff4894dcb76bbf647d56263ea2a96645423f1669176f4844a1bf8e478ad30"},
	{"small.en-q8_0", 264477561, "67a179f608ea6114bd3fdb9060e762b588a3fb3bd00c4387971be4d177958067"},
	{"medium", 1533763059, "6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208"},
	{"medium-q5_0", 539212467, "19fea4b380c3a618ec4723c3eef2eb785ffba0d0538cf43f8f235e7b3b34220f"},
	{"medium-q8_0", 823369779, "42a1ffcbe4167d224232443396968db4d02d4e8e87e213d3ee2e03095dea6502"},
	{"medium.en", 1533774781, "cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356"},
	{"medium.en-q5_0", 539225533, "76733e26ad8fe1c7a5bf7531a9d41917b2adc0f20f2e4f5531688a8c6cd88eb0"},
	{"medium.en-q8_0", 823382461, "43fa2cd084de5a04399a896a9a7a786064e221365c01700cea4666005218f11c"},
	{"large-v3", 3095033483, "64d182b440b98d5203c4f9bd541544d84c605196c4f7b845dfa11fb23594d1e2"},
	{"large-v3-q5_0", 1081140203, "d75795ecff3f83b5faa89d1900604ad8c780abd5739fae406de19f23ecd98ad1"},
	{"large-v3-turbo", 1624555275, "1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69"},
	{"large-v3-turbo-q5_0", 574041195, "394221709cd5ad1f40c46e6031ca61bce88931e6e088c188294c6d5a55ffa7e2"},
	{"large-v3-turbo-q8_0", 874188075, "317eb69c11673c9de1e1f0d459b253999804ec71ac4c23c17ecf5fbe24e259a1"},
}

// Per base size: OpenAI whisper README (params, relative speed on A100
// vs large) and whisper.cpp README (memory, f16 models).
var sizes = map[string]sizeInfo{
	"tiny":           {"39M", 10, 273, "bd577a113a864445d4c299885e0cb97d4ba92b5f", false},
	"tiny.en":        {"39M", 10, 273, "c78c86eb1a8faa21b369bcd33207cc90d64ae9df", true},
	"base":           {"74M", 7, 388, "465707469ff3a37a2b9b8d8f89f2f99de7299dac", false},
	"base.en":        {"74M", 7, 388, "137c40403d78fd54d454da0f9bd998f78703390c", true},
	"small":          {"244M", 4, 852, "55356645c2b361a969dfd0ef2c5a50d530afd8d5", false},
	"small.en":       {"244M", 4, 852, "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022", true},
	"medium":         {"769M", 2, 2100, "fd9727b6e1217c2f614f9b698455c4ffd82463b4", false},
	"medium.en":      {"769M", 2, 2100, "8c30f0e44ce9560643ebd10bbe50cd20eafd3723", true},
	"large-v3":       {"1550M", 1, 3900, "ad82bf6a9043ceed055076d0fd39f5f186ff8062", false},
	"large-v3-turbo": {"809M", 8, 0, "4af2b29d7ec73d781377bfd1758ca957a807e941", false},
}

// Catalog returns every named model, ASR models by name then the VAD model.
func Catalog() []Card {
	out := make([]Card, 0, len(asrFiles)+1)
	for _, f := range asrFiles {
		base, quant, _ := strings.Cut(f.name, "-q")
		if strings.HasPrefix(f.name, "large-v3-turbo") {
			base, quant, _ = strings.Cut(f.name, "-turbo-q")
			base += "-turbo"
		}
		s := sizes[base]
		c := Card{
			Name: f.name, Kind: KindASR, Params: s.params,
			File: "ggml-" + f.name + ".bin", URL: hfBase + "ggml-" + f.name + ".bin",
			SizeBytes: f.size, SHA256: f.sha256, ChecksumNote: lfsNote,
			Quantization: "f16", RelativeSpeed: s.speed, WERSource: werNote,
		}
		if quant != "" {
			c.Quantization = "q" + quant
		}
		c.Languages = "multilingual (99 languages)"
		if s.english {
			c.Languages = "en"
		}
		if c.Quantization == "f16" {
			c.ChecksumNote += "; whisper.cpp models/README.md SHA-1 " + s.sha1
			if s.memMB > 0 {
				c.MemoryMB = s.memMB
				c.MemoryNote = "whisper.cpp README Memory usage table (" + strings.TrimSuffix(strings.Split(base, ".")[0], "-v3") + ")"
			}
		}
		if c.MemoryMB == 0 {
			c.MemoryNote = "not in whisper.cpp's README table; expect about file size plus a few hundred MB"
		}
		c.Licence = "MIT (OpenAI whisper weights; ggml conversion by whisper.cpp, MIT)"
		if m, ok := MeasuredOf(c.Name); ok {
			c.Measured = &m
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return append(out, Card{
		Name: "silero-v6.2.0", Kind: KindVAD, Languages: "any", Params: "not recorded",
		File: SileroFile, URL: "https://huggingface.co/ggml-org/whisper-vad/resolve/main/ggml-silero-v6.2.0.bin",
		SizeBytes: 885098, SHA256: "2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987",
		ChecksumNote: "sha256 of whisper.cpp's published file; scripts/silero-ggml.py rebuilds it byte for byte from PyPI silero-vad==6.2.0 (the offline source of make model)",
		Quantization: "f32", WERSource: "not applicable (voice activity detector)",
		MemoryNote: "not measured",
	}, Card{
		Name: "smart-turn-v3.2", Kind: KindTurn, Languages: "23 (pipecat-ai/smart-turn README; Chinese and English among them)", Params: "8M",
		File: "smart-turn-v3.2-cpu.onnx", URL: "https://pypi.org/project/pipecat-ai/1.14.0/",
		SizeBytes: 8679182, SHA256: "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
		ChecksumNote: "sha256 of pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx in the PyPI wheel pipecat-ai==1.14.0, which make turn-model extracts and checks (scripts/smartturn.sh); run by ONNX Runtime 1.31.1 (MIT, PyPI onnxruntime==1.31.1)",
		Quantization: "int8 (Pipecat's CPU export)", WERSource: "not applicable (end-of-turn model: turn ends found and false, BENCHMARKS.md Turn-taking)",
		MemoryNote: "not measured", Licence: "BSD-2-Clause (Pipecat's smart-turn)",
	})
}

// Lookup finds a card by name (case-insensitive, with an optional "ggml-"
// prefix and ".bin" suffix). The error lists the known names.
func Lookup(name string) (Card, error) {
	n := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(name)), "ggml-"), ".bin")
	cat := Catalog()
	names := make([]string, 0, len(cat))
	for _, c := range cat {
		if c.Name == n {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return Card{}, fmt.Errorf("%w: %q (known: %s)", ErrUnknownModel, name, strings.Join(names, ", "))
}
