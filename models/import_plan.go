package models

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// planItem maps one ggml tensor to a row range of one CTranslate2 variable.
type planItem struct {
	name       string   // ggml tensor name
	src        string   // CT2 variable
	want       []int    // expected CT2 shape
	row0, row1 int      // rows [row0,row1) of dims[0]
	zero       [2]int   // rows that must be zero (fused key bias), if zero[1] > 0
	ttype      GGMLType // type whisper.cpp declares for this tensor
	ne         []int    // ggml dims, innermost first
}

var layerRe = regexp.MustCompile(`^(encoder|decoder)/layer_(\d+)/`)

// ct2Dims derives whisper.cpp hparams from CT2 tensor shapes and scalars
// (config.json carries none).
func ct2Dims(m *CT2Model) (Hparams, error) {
	var h Hparams
	get := func(name string, rank int) ([]int, error) {
		v, ok := m.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("%w: model.bin has no %s", ErrNotWhisper, name)
		}
		if len(v.Dims) != rank {
			return nil, fmt.Errorf("%w: %s has shape %v, want rank %d", ErrBadModelFile, name, v.Dims, rank)
		}
		return v.Dims, nil
	}
	emb, err := get("decoder/embeddings/weight", 2)
	if err != nil {
		return h, err
	}
	encPos, err := get("encoder/position_encodings/encodings", 2)
	if err != nil {
		return h, err
	}
	decPos, err := get("decoder/position_encodings/encodings", 2)
	if err != nil {
		return h, err
	}
	conv1, err := get("encoder/conv1/weight", 3)
	if err != nil {
		return h, err
	}
	d := encPos[1]
	if emb[1] != d || decPos[1] != d || conv1[0] != d || conv1[2] != 3 {
		return h, fmt.Errorf("%w: inconsistent widths: embeddings %v, encoder positions %v, decoder positions %v, conv1 %v",
			ErrBadModelFile, emb, encPos, decPos, conv1)
	}
	layers := map[string]int{}
	for _, name := range m.Order {
		if mm := layerRe.FindStringSubmatch(name); mm != nil {
			n, _ := strconv.Atoi(mm[2])
			layers[mm[1]] = max(layers[mm[1]], n+1)
		}
	}
	heads := func(name string) int32 {
		if v, ok := m.Int(name); ok && v > 0 {
			return int32(v)
		}
		return int32(d / 64) // every Whisper size uses 64-wide heads
	}
	h = Hparams{
		NVocab: int32(emb[0]), NAudioCtx: int32(encPos[0]), NAudioState: int32(d),
		NAudioHead: heads("encoder/num_heads"), NAudioLayer: int32(layers["encoder"]),
		NTextCtx: int32(decPos[0]), NTextState: int32(d), NTextHead: heads("decoder/num_heads"),
		NTextLayer: int32(layers["decoder"]), NMels: int32(conv1[1]), FType: 1,
	}
	if h.NAudioLayer == 0 || h.NTextLayer == 0 {
		return h, fmt.Errorf("%w: no encoder/decoder layers found", ErrNotWhisper)
	}
	if d%int(h.NAudioHead) != 0 || d%int(h.NTextHead) != 0 {
		return h, fmt.Errorf("%w: width %d not divisible by heads %d/%d", ErrBadModelFile, d, h.NAudioHead, h.NTextHead)
	}
	return h, checkHparams(h)
}

// importPlan lists every tensor whisper.cpp loads, in a stable order.
func importPlan(h Hparams) []planItem {
	d, ff := int(h.NAudioState), 4*int(h.NAudioState)
	wt := TypeF16
	if h.FType == 0 {
		wt = TypeF32
	}
	var p []planItem
	whole := func(name, src string, want []int, t GGMLType) {
		ne := slices.Clone(want)
		slices.Reverse(ne)
		p = append(p, planItem{name: name, src: src, want: want, row0: 0, row1: want[0], ttype: t, ne: ne})
	}
	rows := func(name, src string, want []int, r0, r1 int, t GGMLType) {
		ne := slices.Clone(want)
		ne[0] = r1 - r0
		slices.Reverse(ne)
		p = append(p, planItem{name: name, src: src, want: want, row0: r0, row1: r1, ttype: t, ne: ne})
	}
	bias := func(name, src string, want []int, r0, r1, z0, z1 int) {
		rows(name, src, want, r0, r1, TypeF32)
		p[len(p)-1].zero = [2]int{z0, z1}
	}
	lin := func(g, c string, out int, in int) {
		whole(g+".weight", c+"/weight", []int{out, in}, wt)
		whole(g+".bias", c+"/bias", []int{out}, TypeF32)
	}
	ln := func(g, c string) {
		whole(g+".weight", c+"/gamma", []int{d}, TypeF32)
		whole(g+".bias", c+"/beta", []int{d}, TypeF32)
	}
	conv := func(i int, in int) {
		g, c := fmt.Sprintf("encoder.conv%d", i), fmt.Sprintf("encoder/conv%d", i)
		whole(g+".weight", c+"/weight", []int{d, in, 3}, wt)
		p = append(p, planItem{name: g + ".bias", src: c + "/bias", want: []int{d}, row1: d, ttype: TypeF32, ne: []int{1, d}})
	}
	selfAttn := func(g, c string) {
		q := c + "/self_attention/linear_0"
		rows(g+".attn.query.weight", q+"/weight", []int{3 * d, d}, 0, d, wt)
		bias(g+".attn.query.bias", q+"/bias", []int{3 * d}, 0, d, d, 2*d)
		rows(g+".attn.key.weight", q+"/weight", []int{3 * d, d}, d, 2*d, wt)
		rows(g+".attn.value.weight", q+"/weight", []int{3 * d, d}, 2*d, 3*d, wt)
		bias(g+".attn.value.bias", q+"/bias", []int{3 * d}, 2*d, 3*d, d, 2*d)
		lin(g+".attn.out", c+"/self_attention/linear_1", d, d)
		ln(g+".attn_ln", c+"/self_attention/layer_norm")
	}
	mlp := func(g, c string) {
		lin(g+".mlp.0", c+"/ffn/linear_0", ff, d)
		lin(g+".mlp.2", c+"/ffn/linear_1", d, ff)
		ln(g+".mlp_ln", c+"/ffn/layer_norm")
	}

	whole("encoder.positional_embedding", "encoder/position_encodings/encodings", []int{int(h.NAudioCtx), d}, TypeF32)
	conv(1, int(h.NMels))
	conv(2, d)
	ln("encoder.ln_post", "encoder/layer_norm")
	for i := 0; i < int(h.NAudioLayer); i++ {
		g, c := fmt.Sprintf("encoder.blocks.%d", i), fmt.Sprintf("encoder/layer_%d", i)
		selfAttn(g, c)
		mlp(g, c)
	}
	whole("decoder.positional_embedding", "decoder/position_encodings/encodings", []int{int(h.NTextCtx), d}, TypeF32)
	whole("decoder.token_embedding.weight", "decoder/embeddings/weight", []int{int(h.NVocab), d}, wt)
	ln("decoder.ln", "decoder/layer_norm")
	for i := 0; i < int(h.NTextLayer); i++ {
		g, c := fmt.Sprintf("decoder.blocks.%d", i), fmt.Sprintf("decoder/layer_%d", i)
		selfAttn(g, c)
		lin(g+".cross_attn.query", c+"/attention/linear_0", d, d)
		kv := c + "/attention/linear_1"
		rows(g+".cross_attn.key.weight", kv+"/weight", []int{2 * d, d}, 0, d, wt)
		rows(g+".cross_attn.value.weight", kv+"/weight", []int{2 * d, d}, d, 2*d, wt)
		bias(g+".cross_attn.value.bias", kv+"/bias", []int{2 * d}, d, 2*d, 0, d)
		lin(g+".cross_attn.out", c+"/attention/linear_2", d, d)
		ln(g+".cross_attn_ln", c+"/attention/layer_norm")
		mlp(g, c)
	}
	return p
}
