package wer

// Counts is the word-level edit between a reference and a hypothesis.
type Counts struct {
	Ref     int // words in the reference
	Sub     int
	Del     int
	Ins     int
	Correct int
}

// Errors is Sub + Del + Ins.
func (c Counts) Errors() int { return c.Sub + c.Del + c.Ins }

// Rate is Errors / Ref; with an empty reference it is 0 for an empty
// hypothesis and 1 otherwise.
func (c Counts) Rate() float64 {
	if c.Ref == 0 {
		if c.Ins == 0 {
			return 0
		}
		return 1
	}
	return float64(c.Errors()) / float64(c.Ref)
}

// Compare normalises both texts and aligns them by word-level Levenshtein
// distance (all edits cost 1; ties prefer substitutions, then deletions).
func Compare(ref, hyp string) Counts {
	return align(Normalize(ref), Normalize(hyp))
}

// WER returns the word error rate of hyp against ref, the number of word
// errors and the number of reference words.
func WER(ref, hyp string) (w float64, errs, refWords int) {
	c := Compare(ref, hyp)
	return c.Rate(), c.Errors(), c.Ref
}

type cell struct{ cost, sub, del, ins int }

func align(r, h []string) Counts {
	// prev/cur are rows of the DP table over hypothesis positions.
	prev := make([]cell, len(h)+1)
	cur := make([]cell, len(h)+1)
	for j := range prev {
		prev[j] = cell{cost: j, ins: j}
	}
	for i := 1; i <= len(r); i++ {
		cur[0] = cell{cost: i, del: i}
		for j := 1; j <= len(h); j++ {
			best := prev[j-1]
			if r[i-1] != h[j-1] {
				best.cost++
				best.sub++
			}
			if d := prev[j]; d.cost+1 < best.cost {
				best = d
				best.cost++
				best.del++
			}
			if in := cur[j-1]; in.cost+1 < best.cost {
				best = in
				best.cost++
				best.ins++
			}
			cur[j] = best
		}
		prev, cur = cur, prev
	}
	e := prev[len(h)]
	return Counts{Ref: len(r), Sub: e.sub, Del: e.del, Ins: e.ins, Correct: len(r) - e.sub - e.del}
}

// Corpus accumulates counts over many utterances; its rate is total errors
// over total reference words (not the mean of per-utterance rates).
type Corpus struct {
	Counts
	Utterances int
}

// Add compares one utterance and adds its counts; it returns them too.
func (c *Corpus) Add(ref, hyp string) Counts {
	return c.add(Compare(ref, hyp))
}

// AddCounts adds one utterance's counts (from Compare, CER or ErrorRate); it returns
// them. Keep one unit (words or characters) per Corpus.
func (c *Corpus) AddCounts(u Counts) Counts { return c.add(u) }

func (c *Corpus) add(u Counts) Counts {
	c.Ref += u.Ref
	c.Sub += u.Sub
	c.Del += u.Del
	c.Ins += u.Ins
	c.Correct += u.Correct
	c.Utterances++
	return u
}

// WER is the corpus word error rate.
func (c *Corpus) WER() float64 { return c.Rate() }
