package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/models"
)

// TestModelsCardShowsKneesHere: `earshot models card NAME` shows, beside the catalog's
// card, the knees `earshot bench --serve` measured for the model on this machine, and
// not those of another model or CPU; a damaged capacity file is a warning, not a failure.
func TestModelsCardShowsKneesHere(t *testing.T) {
	if models.CPUName() == "" {
		t.Skip("this machine's /proc/cpuinfo names no CPU: no knee can be keyed to it")
	}
	path := filepath.Join(t.TempDir(), models.KneeFile)
	here := models.KneeOf(models.HostKey("tiny.en", false, 2, 1))
	here.Streams, here.Date = 3, "2026-12-05T18:00:00Z"
	elsewhere := here
	elsewhere.CPU, elsewhere.Streams = "Another CPU", 9
	other := models.KneeOf(models.HostKey("base", false, 2, 1))
	other.Streams = 1
	for _, k := range []models.Knee{here, elsewhere, other} {
		if err := models.SaveKnee(path, k); err != nil {
			t.Fatal(err)
		}
	}
	environ := []string{"EARSHOT_CAPACITY_FILE=" + path}
	out, _, err := runCLI(t, environ, "models", "card", "tiny.en")
	if err != nil {
		t.Fatal(err)
	}
	var card struct {
		Name  string        `json:"name"`
		Knees []models.Knee `json:"knees_on_this_machine"`
	}
	if err := json.Unmarshal([]byte(out), &card); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if card.Name != "tiny.en" || len(card.Knees) != 1 || card.Knees[0].Streams != 3 {
		t.Errorf("card %s with knees %+v; want tiny.en with this machine's knee of 3 alone", card.Name, card.Knees)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, environ, "models", "card", "tiny.en")
	if err != nil || strings.Contains(out, "knees_on_this_machine") || !strings.Contains(errOut, path) {
		t.Errorf("damaged file: err %v, stderr %q, stdout:\n%s", err, errOut, out)
	}
}
