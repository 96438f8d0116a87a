package billing

import (
	"fmt"
	"math/big"
)

const msPerHour = 3_600_000

// mulDivRound returns a×b/d rounded half up, exactly (a, b >= 0, d > 0).
func mulDivRound(a, b, d int64) int64 {
	n := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	n.Add(n, big.NewInt(d/2))
	return n.Quo(n, big.NewInt(d)).Int64()
}

// amountMinor is the price of ms of audio at pricePerHour minor units, rounded half up.
func amountMinor(ms, pricePerHour int64) int64 { return mulDivRound(ms, pricePerHour, msPerHour) }

// billableMs is what one stream of ms is billed as: rounded up to roundMs, at least
// minMs; a stream with no audio costs nothing.
func billableMs(ms, roundMs, minMs int64) int64 {
	if ms <= 0 {
		return 0
	}
	if roundMs > 1 && ms%roundMs != 0 {
		ms += roundMs - ms%roundMs
	}
	return max(ms, minMs)
}

// formatHours writes ms as hours with 4 decimals, rounded half up.
func formatHours(ms int64) string {
	u := mulDivRound(ms, 10_000, msPerHour)
	return fmt.Sprintf("%d.%04d", u/10_000, u%10_000)
}

// formatMinor writes a minor-unit amount with 2 decimals (cents).
func formatMinor(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}
