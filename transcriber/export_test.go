package transcriber

// AudioCtxFor is the encoder window a final over samples decodes with.
func AudioCtxFor(samples int) int { return audioCtx(min(samples, 30*16000), true) }
