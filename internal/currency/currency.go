// Package currency knows the ISO 4217 codes, which every amount the sidecar stores
// (revenue, spend, automatic events) must be in.
package currency

import "strings"

// iso4217 lists the ISO 4217 currency codes in use (2025), funds and metals included,
// so that revenue in a code the website mistyped is refused instead of summed apart.
const iso4217 = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN " +
	"BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR " +
	"FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR " +
	"KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR " +
	"MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD " +
	"SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW " +
	"UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR " +
	"ZMW ZWG ZWL"

// Valid reports whether code is an ISO 4217 code (upper case, as the standard writes it).
func Valid(code string) bool {
	return len(code) == 3 && strings.ToUpper(code) == code && strings.Contains(iso4217, code)
}
