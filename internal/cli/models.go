package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/earshot-dev/earshot/models"
)

func init() {
	register(&command{
		name:    "models",
		summary: "list, download, import, synthesize and verify whisper models",
		usage: `Subcommands:
  list [--json]                 the catalog (model cards) and what is installed
  pull NAME [--force]           download NAME into the model dir (progress, resume, sha256 check)
  import-ct2 DIR --name NAME    convert a CTranslate2/faster-whisper Whisper export to ggml
  quantize NAME [--type q8_0]   write NAME-q8_0 from an installed float16 model (e.g. tiny.en →
                                tiny.en-q8_0: weight matrices in 8 bits, ~1.8× smaller, faster on CPU)
  synth --dims D --out FILE     a whisper.cpp-valid model with random weights (benchmarks only)
  verify FILE                   check a ggml file's header, vocabulary and tensors
  path NAME                     print the file of an installed model (exit 1 if missing)
  install NAME FILE             copy a local file in as NAME, verified against the catalog
  card NAME                     NAME's model card as JSON, with what make model-cards measured
                                and the knees earshot bench --serve measured for it on this machine
  measure NAME… [--measured F] measure installed models on the dev sets ($EARSHOT_TESTDATA):
                                offline WER/CER and real-time factor, then streamed through a
                                fresh 'earshot serve' (first text, finals, error rate, memory);
                                merged into F (default models/measured.json)
The model dir is --model-dir, else $EARSHOT_MODEL_DIR, else ~/.cache/earshot/models.`,
		run: runModels,
	})
}

func runModels(ctx context.Context, e *env, args []string) error {
	c := commands["models"]
	fs := newFlags(e, c, "<list|pull|import-ct2|quantize|synth|verify|path|install|card|measure> [args]")
	dir := fs.String("model-dir", models.DefaultDir(), "directory holding ggml model files (env EARSHOT_MODEL_DIR)")
	asJSON := fs.Bool("json", false, "list: print JSON model cards")
	force := fs.Bool("force", false, "pull: download again even if present")
	name := fs.String("name", "", "import-ct2: catalog name of the imported model (e.g. tiny.en)")
	dims := fs.String("dims", "", "synth: "+strings.Join(models.SynthDims(), "|"))
	out := fs.String("out", "", "synth: output file")
	qtype := fs.String("type", "q8_0", "quantize: "+strings.Join(models.QuantizeTypes(), "|"))
	measureOut := fs.String("measured", "models/measured.json", "measure: the measurements file to merge into")
	streamSec := fs.Duration("stream-seconds", 0, "measure: audio streamed per model and language (0: each dev set once)")
	sub, err := parseSub(fs, args)
	if err != nil {
		return err
	}
	pos := fs.Args()
	switch sub {
	case "list":
		warnMeasured(e)
		return modelsList(e, *dir, *asJSON)
	case "card":
		if len(pos) != 1 {
			return fmt.Errorf("usage: earshot models card NAME (see 'earshot models list')")
		}
		warnMeasured(e)
		card, err := models.Lookup(pos[0])
		if err != nil {
			return err
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			models.Card
			// What `earshot bench --serve` measured for it on this machine (README: how
			// many streams a worker admits); absent when nothing was.
			Here []models.Knee `json:"knees_on_this_machine,omitempty"`
		}{card, kneesHere(e, *dir, card.Name)})
	case "measure":
		if len(pos) == 0 {
			return fmt.Errorf("usage: earshot models measure NAME… [--measured FILE] [--stream-seconds 0]")
		}
		return measureModels(ctx, e, *dir, *measureOut, pos, *streamSec)
	case "pull":
		if len(pos) != 1 {
			return fmt.Errorf("usage: earshot models pull NAME (see 'earshot models list')")
		}
		card, err := models.Lookup(pos[0])
		if err != nil {
			return err
		}
		p, err := models.Pull(ctx, card, *dir, models.PullOptions{Progress: e.stderr, Force: *force})
		if err != nil {
			return fmt.Errorf("%w\n  (no network to the model host? for tiny.en or base run: make model MODEL=NAME)", err)
		}
		fmt.Fprintln(e.stdout, p)
		return nil
	case "import-ct2":
		if len(pos) != 1 || *name == "" {
			return fmt.Errorf("usage: earshot models import-ct2 DIR --name NAME")
		}
		dst := filepath.Join(*dir, "ggml-"+*name+".bin")
		rep, err := models.ImportCT2(ctx, pos[0], dst, e.stderr)
		if err != nil {
			return err
		}
		for _, w := range rep.Warnings {
			fmt.Fprintln(e.stderr, "import: warning:", w)
		}
		fmt.Fprintf(e.stdout, "imported %s (%s, %d tensors, %d bytes) in %v → %s\n",
			*name, rep.ModelType, rep.Tensors, rep.Bytes, rep.Elapsed.Round(1e6), rep.Output)
		return nil
	case "quantize":
		if len(pos) != 1 {
			return fmt.Errorf("usage: earshot models quantize NAME [--type %s]", strings.Join(models.QuantizeTypes(), "|"))
		}
		src, err := models.Resolve(*dir, pos[0])
		if err != nil {
			return err
		}
		base := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(src), "ggml-"), ".bin")
		dst := filepath.Join(*dir, "ggml-"+base+"-"+*qtype+".bin")
		rep, err := models.Quantize(ctx, src, dst, *qtype, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "quantized %s to %s (%d of %d tensors, %d → %d bytes) in %v → %s\n",
			base, *qtype, rep.Quantized, rep.Tensors, rep.InBytes, rep.OutBytes, rep.Elapsed.Round(1e6), rep.Output)
		return nil
	case "synth":
		if *dims == "" || *out == "" {
			return fmt.Errorf("usage: earshot models synth --dims %s --out FILE", strings.Join(models.SynthDims(), "|"))
		}
		if err := models.Synthesize(*dims, *out, e.stderr); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: synthetic %s model (random weights; served only with --allow-synthetic-models)\n", *out, *dims)
		return nil
	case "verify":
		if len(pos) != 1 {
			return fmt.Errorf("usage: earshot models verify FILE")
		}
		info, err := models.ReadGGMLInfo(pos[0])
		if err != nil {
			return err
		}
		if !info.HasWeights() {
			return fmt.Errorf("%s: %w: %d of %d tensors", pos[0], models.ErrBadModelFile, info.TensorCount, info.ExpectedTensors)
		}
		fmt.Fprintf(e.stdout, "%s: ok: %s (%s), vocab %d, multilingual %v, %d tensors, synthetic %v\n",
			pos[0], info.ModelType, info.Variant, info.NVocab, info.Multilingual, info.TensorCount, info.Synthetic)
		return nil
	case "path":
		if len(pos) != 1 {
			return fmt.Errorf("usage: earshot models path NAME")
		}
		p, err := models.Resolve(*dir, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, p)
		return nil
	case "install":
		if len(pos) != 2 {
			return fmt.Errorf("usage: earshot models install NAME FILE")
		}
		card, err := models.Lookup(pos[0])
		if err != nil {
			return err
		}
		p, err := models.Install(card, pos[1], *dir)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, p)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: use list, pull, import-ct2, quantize, synth, verify, path or install", sub)
}

// warnMeasured says on stderr that the cards come without their measurements when the
// committed measured.json is broken.
func warnMeasured(e *env) {
	if err := models.MeasuredErr(); err != nil {
		fmt.Fprintf(e.stderr, "warning: model cards are shown without measurements: %v\n", err)
	}
}

func modelsList(e *env, dir string, asJSON bool) error {
	installed, err := models.Installed(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	have := map[string]bool{}
	for _, m := range installed {
		have[m.Name] = true
	}
	cards := models.Catalog()
	if asJSON {
		type row struct {
			models.Card
			Installed bool `json:"installed"`
		}
		rows := make([]row, len(cards))
		for i, c := range cards {
			rows[i] = row{c, have[c.Name]}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tLANGUAGES\tPARAMS\tQUANT\tSIZE\tSPEED\tMEMORY\tINSTALLED")
	for _, c := range cards {
		size, mem, speed := "-", "-", "-"
		if c.SizeBytes > 0 {
			size = fmt.Sprintf("%.0f MB", float64(c.SizeBytes)/1e6)
		}
		if c.MemoryMB > 0 {
			mem = fmt.Sprintf("%d MB", c.MemoryMB)
		}
		if c.RelativeSpeed > 0 {
			speed = fmt.Sprintf("%gx", c.RelativeSpeed)
		}
		inst := ""
		if have[c.Name] {
			inst = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Kind, c.Languages, c.Params, c.Quantization, size, speed, mem, inst)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nmodel dir: %s\n", dir)
	return nil
}

// interleave moves flags after positional arguments in front of them, so that
// `earshot models import-ct2 DIR --name X` parses like `--name X DIR`.
func interleave(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(a) {
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

// boolFlags are the flags that take no value anywhere in the CLI.
var boolFlags = map[string]bool{"json": true, "force": true, "fast": true, "demo": true, "help": true, "h": true,
	"allow-synthetic-models": true, "gpu": true, "csv": true, "multichannel": true, "turns": true}

func isBoolFlag(a string) bool { return boolFlags[strings.TrimLeft(a, "-")] }

// kneesHere lists the knees of model in the capacity file (EARSHOT_CAPACITY_FILE, else
// capacity.json in dir) measured on this CPU, core count and architecture. A file that
// cannot be read is reported on stderr and lists none.
func kneesHere(e *env, dir, model string) []models.Knee {
	knees, err := models.LoadKnees(models.KneeFilePath(envOr(e, "EARSHOT_CAPACITY_FILE", ""), dir))
	if err != nil {
		fmt.Fprintf(e.stderr, "warning: %v\n", err)
	}
	return models.KneesHere(knees, model)
}
