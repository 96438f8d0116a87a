package transcriber

// DeviceInfo is what the GPU reports about itself (nvidia-smi --query-gpu=
// memory.free,memory.total,compute_cap, and the SM count of cudaDeviceProp).
type DeviceInfo struct {
	FreeMem    int64 // bytes free now (other processes may hold some)
	TotalMem   int64 // bytes on the device
	ComputeCap int   // major·10 + minor: 90 for H100/H200, 89 for Ada, 86/80 for Ampere, 75 for Turing
	SMs        int   // streaming multiprocessors
}

// ModelMem is the device memory one model needs: its weights once per worker, and one
// decode state (KV caches and compute buffers of a whisper_state) per decode slot.
type ModelMem struct {
	Weights        int64
	StatePerStream int64
}

// Sizing constants of GPUSlots.
const (
	gpuReserveFixed = 512 << 20 // CUDA context, cuBLAS workspace
	gpuReserveShare = 20        // plus 1/20 of the device for fragmentation and other tenants
	gpuMaxSlots     = 64        // beyond this the decode queue, not the GPU, is the limit
)

// GPUSlots sizes a worker on one GPU: slots is how many decodes run at once (each holds
// one decode state on the device), maxSessions how many live streams the worker
// accepts. It is a pure function of what the device reports:
//
//   - memory: FreeMem (capped at TotalMem) less a reserve of 512 MiB + 5 % of TotalMem,
//     less the weights, divided by StatePerStream;
//   - compute: one slot per 4 SMs on compute capability ≥ 8.0 (tensor cores with
//     bf16/tf32), per 8 SMs on 7.x, per 16 SMs before; at least 1;
//   - slots is the smaller of the two, at most 64;
//   - maxSessions is slots × 8 on ≥ 8.0 (a real-time stream needs a decode every step,
//     which takes a fraction of it on such a GPU), × 4 on 7.x, × 2 before.
//
// When the weights and one state do not fit, it returns 0, 0: the model cannot be
// served on this device.
func GPUSlots(dev DeviceInfo, model ModelMem) (slots, maxSessions int) {
	if model.StatePerStream <= 0 || dev.TotalMem <= 0 || dev.SMs <= 0 {
		return 0, 0
	}
	free := min(dev.FreeMem, dev.TotalMem)
	usable := free - gpuReserveFixed - dev.TotalMem/gpuReserveShare - model.Weights
	if usable < model.StatePerStream {
		return 0, 0
	}
	memSlots := usable / model.StatePerStream
	smPerSlot, perSlot := 16, 2
	switch {
	case dev.ComputeCap >= 80:
		smPerSlot, perSlot = 4, 8
	case dev.ComputeCap >= 70:
		smPerSlot, perSlot = 8, 4
	}
	computeSlots := int64(max(1, dev.SMs/smPerSlot))
	slots = int(min(memSlots, computeSlots, gpuMaxSlots))
	return slots, slots * perSlot
}
