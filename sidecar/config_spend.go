package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
)

// spendConfig is the spend sync from Meta's Marketing API (SPEC §10).
type spendConfig struct {
	pairs        spendPairs
	every        time.Duration
	days         int
	backfillDays int
}

// spendPairs collects the repeatable -spend-sync act_<id>=<app_id>.
type spendPairs []engine.SpendAccount

func (p *spendPairs) String() string {
	var s []string
	for _, a := range *p {
		s = append(s, "act_"+a.Act+"="+a.App)
	}
	return strings.Join(s, "\n")
}

var spendPairRule = regexp.MustCompile(`^act_([0-9]{1,30})=(\S+)$`)

func (p *spendPairs) Set(v string) error {
	for line := range strings.SplitSeq(v, "\n") { // CTWA_SPEND_SYNC: one pair per line
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		m := spendPairRule.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("%q is not act_<ad account id>=<app id>, e.g. act_174816537731874=106540352242922", line)
		}
		for _, a := range *p {
			if a.Act == m[1] {
				return fmt.Errorf("ad account act_%s is given twice; its spend goes to one app", m[1])
			}
		}
		*p = append(*p, engine.SpendAccount{Act: m[1], App: m[2]})
	}
	return nil
}

func spendFlags(fs *flag.FlagSet, c *spendConfig) {
	fs.Var(&c.pairs, "spend-sync", "act_<ad account id>=<app id>: sync that account's daily per-ad spend from Meta's Marketing API into the app (needs -meta-token with ads_read); repeatable")
	fs.DurationVar(&c.every, "spend-sync-every", time.Hour, "time between spend syncs of an account")
	fs.IntVar(&c.days, "spend-sync-days", 28, "days each spend sync pulls again, today included (Meta revises recent days)")
	fs.IntVar(&c.backfillDays, "spend-backfill-days", 90, "days the first spend sync of an account new to the store pulls")
}

func (c *spendConfig) finish(token string) error {
	switch {
	case len(c.pairs) == 0:
		return nil
	case token == "":
		return errors.New("-spend-sync needs -meta-token (or -meta-token-file): a token with ads_read for the ad accounts")
	case c.every < time.Minute:
		return fmt.Errorf("-spend-sync-every %s is below 1m: Meta's rate limits would stop the sync", c.every)
	case c.days < 1 || c.days > 1100:
		return fmt.Errorf("-spend-sync-days %d is not 1 to 1100 (Meta keeps insights 37 months)", c.days)
	case c.backfillDays < c.days || c.backfillDays > 1100:
		return fmt.Errorf("-spend-backfill-days %d is not from -spend-sync-days (%d) to 1100", c.backfillDays, c.days)
	}
	return nil
}
