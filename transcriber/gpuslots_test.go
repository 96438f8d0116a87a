package transcriber

import "testing"

const mib = int64(1) << 20

// Devices as nvidia-smi and cudaDeviceProp report them (memory.total in MiB, SMs).
var (
	h200    = DeviceInfo{FreeMem: 143000 * mib, TotalMem: 143771 * mib, ComputeCap: 90, SMs: 132}
	rtx4090 = DeviceInfo{FreeMem: 24000 * mib, TotalMem: 24564 * mib, ComputeCap: 89, SMs: 128}
	a100    = DeviceInfo{FreeMem: 40000 * mib, TotalMem: 40960 * mib, ComputeCap: 80, SMs: 108}
	t4      = DeviceInfo{FreeMem: 14900 * mib, TotalMem: 15360 * mib, ComputeCap: 75, SMs: 40}
	gtx1050 = DeviceInfo{FreeMem: 1900 * mib, TotalMem: 2048 * mib, ComputeCap: 61, SMs: 5}
)

// Model memory: ggml f16 weights, and a decode state (KV caches + compute buffers).
var (
	largeTurbo = ModelMem{Weights: 1624 * mib, StatePerStream: 300 * mib}
	tinyEn     = ModelMem{Weights: 75 * mib, StatePerStream: 60 * mib}
	small      = ModelMem{Weights: 466 * mib, StatePerStream: 120 * mib}
)

func TestGPUSlots(t *testing.T) {
	busy := h200
	busy.FreeMem = 10000 * mib // another process holds most of the GPU
	overReported := t4
	overReported.FreeMem = 2 * t4.TotalMem
	cases := []struct {
		name            string
		dev             DeviceInfo
		model           ModelMem
		slots, sessions int
	}{
		{"H200 large-v3-turbo: compute bound, 132 SMs / 4", h200, largeTurbo, 33, 264},
		{"H200 tiny.en: compute bound", h200, tinyEn, 33, 264},
		{"RTX 4090 large-v3-turbo", rtx4090, largeTurbo, 32, 256},
		{"A100 40GB small", a100, small, 27, 216},
		{"T4 large-v3-turbo: Turing, one slot per 8 SMs", t4, largeTurbo, 5, 20},
		{"T4 free memory above total is capped", overReported, largeTurbo, 5, 20},
		{"busy H200: memory bound, (10000-7700-1624)/300", busy, largeTurbo, 2, 16},
		{"2 GB Pascal cannot hold large-v3-turbo", gtx1050, largeTurbo, 0, 0},
		{"2 GB Pascal runs tiny.en on one slot", gtx1050, tinyEn, 1, 2},
		{"no state size: refuse", h200, ModelMem{Weights: 1}, 0, 0},
		{"no device", DeviceInfo{}, tinyEn, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			slots, sessions := GPUSlots(c.dev, c.model)
			if slots != c.slots || sessions != c.sessions {
				t.Fatalf("GPUSlots = %d slots, %d sessions; want %d, %d", slots, sessions, c.slots, c.sessions)
			}
			if slots > 0 {
				used := c.model.Weights + int64(slots)*c.model.StatePerStream
				if used > min(c.dev.FreeMem, c.dev.TotalMem) {
					t.Fatalf("%d slots need %d MiB, more than the %d MiB free", slots, used/mib, c.dev.FreeMem/mib)
				}
			}
		})
	}
}

func TestGPUSlotsNeverExceedsCap(t *testing.T) {
	huge := DeviceInfo{FreeMem: 1 << 50, TotalMem: 1 << 50, ComputeCap: 100, SMs: 10000}
	if slots, _ := GPUSlots(huge, tinyEn); slots != gpuMaxSlots {
		t.Fatalf("slots %d on a huge device, want the cap %d", slots, gpuMaxSlots)
	}
}
