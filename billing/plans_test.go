package billing

import (
	"reflect"
	"testing"
)

// TestDemoPlanAllowsBase: the latest demo plan (what serve --demo puts the demo tenant
// on) allows the multilingual base model and its quantized copies, still refuses
// larger models, and keeps v1's numbers; demo v1 itself is unchanged (plans are
// versioned: a tenant recorded on v1 keeps v1's terms).
func TestDemoPlanAllowsBase(t *testing.T) {
	plans := DefaultPlans()
	latest, err := plans.Get("demo", 0)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Version != 2 {
		t.Fatalf("latest demo plan is v%d, want v2", latest.Version)
	}
	for model, want := range map[string]bool{
		"tiny": true, "tiny.en": true, "tiny.en-q8_0": true, "base": true, "base-q8_0": true, "base.en": true, "base.en-q5_1": true,
		"small": false, "small.en": false, "medium": false, "large-v3": false, "large-v3-turbo": false, "base-turbo": false, "base-qx": false,
	} {
		if got := latest.AllowsModel(model); got != want {
			t.Errorf("demo v2 allows %s: %v, want %v", model, got, want)
		}
	}

	v1, err := plans.Get("demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantV1 := Plan{ID: "demo", Version: 1, Kind: Monthly, Currency: "USD", IncludedHours: 1, RoundMs: 1000,
		Models: []string{"tiny", "tiny.en"}, MaxFileSeconds: 300}
	if !reflect.DeepEqual(v1, wantV1) {
		t.Fatalf("demo v1 changed: %+v, want %+v", v1, wantV1)
	}
	if v1.AllowsModel("base") || v1.AllowsModel("base-q8_0") {
		t.Error("demo v1 allows base")
	}
	// v2 differs from v1 in its models only: still free, 1 h, no overage, 5 min files.
	same := latest
	same.Version, same.Models = 1, v1.Models
	if !reflect.DeepEqual(same, v1) {
		t.Errorf("demo v2 differs from v1 beyond its models: %+v vs %+v", latest, v1)
	}
}
