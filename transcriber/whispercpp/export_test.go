package whispercpp

// PowerSpectrum and Mel reach unexported helpers from the external test package.
var PowerSpectrum = powerSpectrum

func (s *State) Mel(samples []float32, threads int) error { return s.mel(samples, threads) }

// GELU reaches ggml's GELU through gelu (TestGELUTable).
var GELU = gelu

// LastThreads reaches lastThreads (TestThreadCap).
var LastThreads = lastThreads
