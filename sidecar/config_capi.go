package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/engine"
	"github.com/ctwa-sidecar/ctwa-sidecar/metaapi"
)

// capiConfig is how conversions reach Meta's Conversions API (SPEC §9).
type capiConfig struct {
	metaToken    string
	tokenFile    string // -meta-token-file, read again by the clients
	dataset      string
	wabaID       string
	graphURL     string
	graphVersion string
	mapText      string
	testCode     string
	dryRun       bool
	events       engine.ConversionMap // parsed -capi-map; nil when conversions are off
}

func capiFlags(fs *flag.FlagSet, c *capiConfig) {
	fs.StringVar(&c.metaToken, "meta-token", "", "Meta access token (whatsapp_business_management, whatsapp_business_manage_events): turns on conversions to Meta's Conversions API, with -capi-dataset or -waba-id")
	fs.StringVar(&c.dataset, "capi-dataset", "", "dataset id conversions are sent to; without it the dataset of -waba-id is found, or created")
	fs.StringVar(&c.wabaID, "waba-id", "", "WhatsApp Business Account id: where the dataset is found, and whatsapp_business_account_id of conversions whose webhooks named none (On-Premises, Sinch)")
	fs.StringVar(&c.graphURL, "graph-url", "https://graph.facebook.com", "Graph API base URL")
	fs.StringVar(&c.graphVersion, "graph-version", metaapi.DefaultVersion, "Graph API version")
	fs.StringVar(&c.mapText, "capi-map", "", "what is sent as which Meta event, over the default "+engine.DefaultConversionMap().String()+
		": source=EventName,… where source is lead (first message of a CTWA session), converted, or an off-thread action; source= sends nothing for it")
	fs.StringVar(&c.testCode, "capi-test-code", "", "test_event_code: conversions go to the dataset's Test Events in Events Manager")
	fs.BoolVar(&c.dryRun, "capi-dry-run", false, "derive conversions and list them in the activity log as skipped (dry_run) without sending them")
}

// client is a Graph API client with the token, read again from -meta-token-file when given.
func (c *capiConfig) client(timeout time.Duration) *metaapi.Client {
	m := metaapi.New(c.graphURL, c.graphVersion, c.metaToken, timeout)
	if c.tokenFile != "" {
		m.ReadTokenFrom(c.tokenFile)
	}
	return m
}

var (
	graphVersionRule = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
	graphIDRule      = regexp.MustCompile(`^[0-9]{1,30}$`)
)

// finish validates the Graph API and conversion flags and parses -capi-map. Conversions
// are on with -meta-token and -waba-id or -capi-dataset, or with -capi-dry-run; a token
// alone leaves them off (config.finish refuses it unless the spend sync uses it).
func (c *capiConfig) finish() error {
	if c.metaToken == "" && !c.dryRun {
		if c.dataset != "" || c.testCode != "" || c.mapText != "" {
			return errors.New("-capi-dataset, -capi-test-code and -capi-map need -meta-token (or -capi-dry-run)")
		}
		return nil
	}
	u, err := url.Parse(c.graphURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "":
		return fmt.Errorf("-graph-url %q is not an http(s) URL such as https://graph.facebook.com", c.graphURL)
	case !graphVersionRule.MatchString(c.graphVersion):
		return fmt.Errorf("-graph-version %q is not a Graph API version such as %s", c.graphVersion, metaapi.DefaultVersion)
	case c.dataset != "" && !graphIDRule.MatchString(c.dataset):
		return fmt.Errorf("-capi-dataset %q is not a numeric dataset id", c.dataset)
	case c.wabaID != "" && !graphIDRule.MatchString(c.wabaID):
		return fmt.Errorf("-waba-id %q is not a numeric WhatsApp Business Account id", c.wabaID)
	case c.wabaID == "" && c.dataset == "" && !c.dryRun:
		return nil // no conversions
	}
	if c.events, err = engine.ParseConversionMap(c.mapText); err != nil {
		return fmt.Errorf("-capi-map: %w", err)
	}
	return nil
}
