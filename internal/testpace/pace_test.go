package testpace_test

import (
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testpace"
)

func TestFactor(t *testing.T) {
	f := testpace.Factor(t)
	if f < 1 || f > testpace.MaxFactor {
		t.Fatalf("factor %.2f outside [1, %d]", f, testpace.MaxFactor)
	}
	if got := testpace.Scale(t, time.Second); got < time.Second || got != time.Duration(f*float64(time.Second)) {
		t.Errorf("Scale(1 s) = %v with factor %.2f", got, f)
	}
	t.Setenv(testpace.Env, "2.5")
	if got := testpace.Factor(t); got != 2.5 {
		t.Errorf("%s=2.5: factor %v", testpace.Env, got)
	}
}
