package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/cluster"
)

// clusterConfig is cluster mode (SPEC §11): the log on a NATS JetStream stream.
type clusterConfig struct {
	urls     string
	creds    string
	stream   string
	replicas int
	timeout  time.Duration
}

func clusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	fs.StringVar(&c.urls, "nats", "", "NATS server URLs, comma-separated: keep the log in a JetStream stream shared with other sidecars (cluster mode)")
	fs.StringVar(&c.creds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&c.stream, "nats-stream", "", "JetStream stream of the log (default ctwa_<client-id>); members of one group share it")
	fs.IntVar(&c.replicas, "nats-replicas", 3, "replicas of a stream this sidecar creates: 3 keeps writes going with one NATS node down")
	fs.DurationVar(&c.timeout, "nats-timeout", 2*time.Second, "a publish not acknowledged within this long counts as the cluster unreachable: webhooks are then spooled locally")
}

// finish checks the cluster flags; listen is -listen, empty for a read replica.
func (c *clusterConfig) finish(clientID, listen string) error {
	if c.urls == "" {
		switch {
		case listen == "":
			return errors.New(`-listen "" (no webhook listener) is for a read replica of a cluster: it needs -nats`)
		case c.creds != "" || c.stream != "":
			return errors.New("-nats-creds and -nats-stream need -nats: the NATS servers to connect to")
		}
		return nil
	}
	if c.stream == "" {
		c.stream = "ctwa_" + clientID
	}
	if strings.Contains(c.stream, ",") {
		return fmt.Errorf("-nats-stream %q: following several streams (a fleet view) is not supported yet; run one read replica per stream", c.stream)
	}
	if err := cluster.CheckStream(c.stream); err != nil {
		return fmt.Errorf("-nats-stream: %w (the default is ctwa_<client-id>)", err)
	}
	switch {
	case c.replicas < 1 || c.replicas > 5:
		return fmt.Errorf("-nats-replicas %d is not 1 to 5 (JetStream's limit)", c.replicas)
	case c.timeout <= 0:
		return fmt.Errorf("-nats-timeout %s must be positive", c.timeout)
	}
	return nil
}

// config is what cluster.Open needs.
func (c *clusterConfig) config(name string) cluster.Config {
	return cluster.Config{URLs: c.urls, Creds: c.creds, Stream: c.stream, Replicas: c.replicas, Timeout: c.timeout, Name: name}
}
