package wer

import "strings"

var (
	zhDigits   = []rune("零一二三四五六七八九")
	zhSmall    = []string{"千", "百", "十", ""}
	zhBig      = []string{"", "万", "亿", "万亿"}
	zhPowers10 = []int{1000, 100, 10, 1}
)

// zhNumber reads the number at the start of s (which begins with an ASCII
// digit) and returns the characters it is spoken as, one token each, and the
// bytes it used. It follows how a Mandarin reader says what is written:
//
//   - a four-digit run right before 年 is a year, read digit by digit:
//     2024年 → 二零二四年 (but 26年, a duration, → 二十六年);
//   - a run with a leading zero, or longer than 16 digits, is read digit by
//     digit, as codes and phone numbers are: 007 → 零零七;
//   - other integers are Chinese numerals in groups of 万 and 亿, with 二
//     throughout (二百, not 两百) and 一十 shortened to 十 at the start;
//     "1,000" with a comma before each group of three is one number;
//   - a decimal part is read digit by digit after 点: 3.5 → 三点五;
//   - a trailing % becomes 百分之 before the number: 50% → 百分之五十.
func zhNumber(s string) (toks []string, n int) {
	n = digitsAt(s, 0)
	ds := s[:n]
	if n <= 3 { // thousands separators: 1,234,567
		for n+4 <= len(s) && s[n] == ',' && digitsAt(s, n+1) == 3 {
			ds += s[n+1 : n+4]
			n += 4
		}
	}
	grouped := len(ds) != n
	var frac string
	if n+1 < len(s) && s[n] == '.' && isDigit(s[n+1]) {
		k := digitsAt(s, n+1)
		frac = s[n+1 : n+1+k]
		n += 1 + k
	}
	percent := n < len(s) && s[n] == '%'
	if percent {
		n++
	}

	var b strings.Builder
	if percent {
		b.WriteString("百分之")
	}
	switch {
	case len(ds) == 4 && !grouped && frac == "" && !percent && strings.HasPrefix(s[n:], "年"),
		len(ds) > 1 && ds[0] == '0', len(ds) > 16:
		digitByDigit(&b, ds)
	default:
		zhInteger(&b, ds)
	}
	if frac != "" {
		b.WriteString("点")
		digitByDigit(&b, frac)
	}
	for _, r := range b.String() {
		toks = append(toks, string(r))
	}
	return toks, n
}

// zhInteger writes ds (no leading zero, at most 16 digits) as a Chinese
// numeral. Zeros at the end of a four-digit group are silent and a run of
// zeros inside the number is one 零: 10005 → 一万零五, 101000 → 十万一千,
// 100500 → 十万零五百, 100005000 → 一亿零五千.
func zhInteger(b *strings.Builder, ds string) {
	if strings.Trim(ds, "0") == "" {
		b.WriteRune(zhDigits[0])
		return
	}
	var out strings.Builder
	gap := false // a zero group was skipped since the last one written
	first := (len(ds)-1)%4 + 1
	for start, end, unit := 0, first, (len(ds)-1)/4; start < len(ds); start, end, unit = end, end+4, unit-1 {
		g := atoi(ds[start:end])
		if g == 0 {
			gap = true
			continue
		}
		if out.Len() > 0 && (gap || g < 1000) {
			out.WriteRune(zhDigits[0])
		}
		zhGroup(&out, g)
		out.WriteString(zhBig[unit])
		gap = false
	}
	if s := out.String(); strings.HasPrefix(s, "一十") {
		b.WriteString(strings.TrimPrefix(s, "一"))
	} else {
		b.WriteString(s)
	}
}

// zhGroup writes g (1–9999) with 千, 百, 十; inner zeros become one 零,
// trailing zeros are silent: 1005 → 一千零五, 1050 → 一千零五十.
func zhGroup(b *strings.Builder, g int) {
	started, zero := false, false
	for i, p := range zhPowers10 {
		d := g / p % 10
		if d == 0 {
			zero = started
			continue
		}
		if zero {
			b.WriteRune(zhDigits[0])
			zero = false
		}
		b.WriteRune(zhDigits[d])
		b.WriteString(zhSmall[i])
		started = true
	}
}

func digitByDigit(b *strings.Builder, ds string) {
	for i := range len(ds) {
		b.WriteRune(zhDigits[ds[i]-'0'])
	}
}

func digitsAt(s string, i int) int {
	k := 0
	for i+k < len(s) && isDigit(s[i+k]) {
		k++
	}
	return k
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func atoi(ds string) int {
	v := 0
	for i := range len(ds) {
		v = v*10 + int(ds[i]-'0')
	}
	return v
}
