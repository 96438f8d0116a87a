package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// series is one line of a plot.
type series struct {
	name  string
	color string
	y     []float64 // one per x
}

// LatencySVG plots partial p50/p95 and final p50/p95 latency against concurrent streams.
func LatencySVG(r *Report) string {
	xs, p50, p95, f50, f95 := levelsX(r), col(r, func(l Level) float64 { return l.PartialMs.P50 }),
		col(r, func(l Level) float64 { return l.PartialMs.P95 }),
		col(r, func(l Level) float64 { return l.FinalMs.P50 }),
		col(r, func(l Level) float64 { return l.FinalMs.P95 })
	return plot("Latency vs concurrent streams", "concurrent streams", "latency (ms)", xs, []series{
		{"partial p50", "#1f77b4", p50}, {"partial p95", "#aec7e8", p95},
		{"final p50", "#d62728", f50}, {"final p95", "#ff9896", f95},
	}, r.KneeP95Ms)
}

// CPUSVG plots the CPU of the measured processes (percent of one core) against streams.
func CPUSVG(r *Report) string {
	xs := levelsX(r)
	cpu := col(r, func(l Level) float64 {
		var s float64
		for _, p := range l.Procs {
			s += p.CPUPercent
		}
		return s
	})
	return plot("Service CPU vs concurrent streams", "concurrent streams", "CPU (% of one core)", xs,
		[]series{{"all measured processes", "#2ca02c", cpu}}, 0)
}

func levelsX(r *Report) []float64 {
	var xs []float64
	for _, l := range r.Levels {
		xs = append(xs, float64(l.Streams))
	}
	return xs
}

func col(r *Report, f func(Level) float64) []float64 {
	var v []float64
	for _, l := range r.Levels {
		v = append(v, f(l))
	}
	return v
}

// plot draws a line chart; x is on a log2 scale when it spans more than a factor 8.
// hline > 0 draws a dashed reference line (the knee threshold).
func plot(title, xlabel, ylabel string, xs []float64, ss []series, hline float64) string {
	const W, H, L, R, T, B = 640.0, 400.0, 70.0, 170.0, 40.0, 50.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15">%s</text>`+"\n", L, html.EscapeString(title))
	if len(xs) == 0 {
		b.WriteString(`<text x="70" y="200">no data</text></svg>` + "\n")
		return b.String()
	}
	logx := xs[len(xs)-1]/math.Max(xs[0], 1) > 8
	fx := func(x float64) float64 {
		if logx {
			return math.Log2(math.Max(x, 1))
		}
		return x
	}
	x0, x1 := fx(xs[0]), fx(xs[len(xs)-1])
	if x1 == x0 {
		x0, x1 = x0-1, x1+1
	}
	ymax := hline
	for _, s := range ss {
		for _, y := range s.y {
			ymax = math.Max(ymax, y)
		}
	}
	ymax = niceCeil(ymax)
	px := func(x float64) float64 { return L + (fx(x)-x0)/(x1-x0)*(W-L-R) }
	py := func(y float64) float64 { return H - B - y/ymax*(H-T-B) }
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", L, H-B, W-R, H-B)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", L, T, L, H-B)
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%g</text>`+"\n",
			L, py(y), W-R, py(y), L-6, py(y)+4, math.Round(y*10)/10)
	}
	for _, x := range xs {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", px(x), H-B+16, x)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", (L+W-R)/2, H-12, html.EscapeString(xlabel))
	fmt.Fprintf(&b, `<text transform="translate(16,%.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (T+H-B)/2, html.EscapeString(ylabel))
	if hline > 0 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-dasharray="6,4"/><text x="%.1f" y="%.1f" fill="#888">knee %g ms</text>`+"\n",
			L, py(hline), W-R, py(hline), L+6, py(hline)-5, hline)
	}
	for i, s := range ss {
		var pts []string
		for j, y := range s.y {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(y)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(xs[j]), py(y), s.color)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		ly := T + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			W-R+10, ly, W-R+30, ly, s.color, W-R+36, ly+4, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
