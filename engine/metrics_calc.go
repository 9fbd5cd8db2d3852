package engine

import (
	"math"
	"slices"
)

// Round2 rounds half away from zero to 2 decimals (SPEC §6.2).
func Round2(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*100) / 100
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
	slices.SortFunc(others, func(a, b Money) int { return cmpStrings(a.Currency, b.Currency) })
	return currency, amount, others
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
