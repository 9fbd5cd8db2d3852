package engine

import (
	"math"
	"slices"
	"strings"
)

// Round2 rounds half away from zero to 2 decimals (SPEC §6.2), as on the decimal value:
// money comes in as decimals that binary floating point holds a hair off (64.35/2 is
// 32.174999…97, not 32.175), so a value within a trillionth of a half cent counts as
// that half cent and rounds away from zero (32.18), as a hand calculation does.
func Round2(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	cents := x * 100
	whole, frac := math.Modf(math.Abs(cents))
	if frac < 0.5 && 0.5-frac <= 1e-12*max(1, math.Abs(cents)) {
		return math.Copysign(whole+1, x) / 100
	}
	return math.Round(cents) / 100
}

// Ratio is num/den rounded to 2 decimals; a zero denominator gives 0, never NaN or Inf.
func Ratio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return Round2(num / den)
}

// Percent is num/den*100 rounded to 2 decimals, 0 for a zero denominator.
func Percent(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return Round2(num / den * 100)
}

// Money is revenue in one currency.
type Money struct {
	Currency string  `json:"currency"`
	Amount   float64 `json:"revenue"`
}

// SplitRevenue returns the revenue in the reporting currency and the other currencies
// apart (never summed). The reporting currency is want (the ad account's) or, when
// unknown, the first currency in order (day order of the rollups).
func (t *Totals) SplitRevenue(want string) (currency string, amount float64, others []Money) {
	currency = want
	if currency == "" && len(t.currencyOrder) > 0 {
		currency = t.currencyOrder[0]
	}
	for _, c := range t.currencyOrder {
		if c == currency {
			amount = t.Revenue[c]
			continue
		}
		others = append(others, Money{Currency: c, Amount: Round2(t.Revenue[c])})
	}
	slices.SortFunc(others, func(a, b Money) int { return strings.Compare(a.Currency, b.Currency) })
	return currency, amount, others
}
