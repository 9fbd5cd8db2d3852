package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ctwa-sidecar/ctwa-sidecar/cluster"
)

// clusterConfig is cluster mode (SPEC §11): the log on a NATS JetStream stream.
type clusterConfig struct {
	urls     string
	creds    string
	stream   string // -nats-stream as given, or its default
	replicas int
	timeout  time.Duration
	// follow is -nats-stream read: one stream on a member, one or more on a read
	// replica (several: the fleet view), each one client's log.
	follow []followed
}

// followed is one stream a sidecar follows and the client whose log it is: the
// {client_id} under which the API serves it.
type followed struct{ client, stream string }

func clusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	fs.StringVar(&c.urls, "nats", "", "NATS server URLs, comma-separated: keep the log in a JetStream stream shared with other sidecars (cluster mode)")
	fs.StringVar(&c.creds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&c.stream, "nats-stream", "", "JetStream stream of the log (default ctwa_<client-id>); members of one group share it. "+
		`A read replica (-listen "") may follow several, comma-separated (the fleet view), each one client's log: client=stream, `+
		"or a bare ctwa_<client>, or a bare name that is also the client's; one bare stream serves -client-id")
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
	var err error
	if c.follow, err = parseStreams(c.stream, clientID); err != nil {
		return err
	}
	switch {
	case c.replicas < 1 || c.replicas > 5:
		return fmt.Errorf("-nats-replicas %d is not 1 to 5 (JetStream's limit)", c.replicas)
	case c.timeout <= 0:
		return fmt.Errorf("-nats-timeout %s must be positive", c.timeout)
	case listen == "":
		return nil // a read replica: any streams
	}
	return c.checkMember(clientID)
}

// checkMember refuses, for a member with a webhook listener, anything but one stream of
// the client it records.
func (c *clusterConfig) checkMember(clientID string) error {
	switch {
	case len(c.follow) > 1:
		return fmt.Errorf(`-nats-stream %q lists %d streams: a member with a webhook listener records one client's log, one stream; `+
			`following several (a fleet view) is for a read replica (-listen "")`, c.stream, len(c.follow))
	case c.follow[0].client != clientID:
		return fmt.Errorf("-nats-stream %q names client %q, but this member records -client-id %q", c.stream, c.follow[0].client, clientID)
	}
	return nil
}

// parseStreams reads -nats-stream: comma-separated elements, each stream or
// client=stream. A single bare stream is the log of -client-id, as on a member. In a
// list of several each bare stream names its client: ctwa_<x> is client x's (the
// default stream of a client), any other name the client of the same name.
func parseStreams(list, clientID string) ([]followed, error) {
	elems := strings.Split(list, ",")
	follow := make([]followed, 0, len(elems))
	clients, streams := map[string]bool{}, map[string]bool{}
	for _, e := range elems {
		f, err := parseFollowed(strings.TrimSpace(e), clientID, len(elems) == 1)
		if err != nil {
			return nil, fmt.Errorf("-nats-stream %q: %w", list, err)
		}
		// Lower case: each client's store is a directory, and two names that differ
		// in case only would share one on a case-insensitive file system.
		key := strings.ToLower(f.client)
		switch {
		case clients[key]:
			return nil, fmt.Errorf("-nats-stream %q: client %q is listed twice; a client has one stream", list, f.client)
		case streams[f.stream]:
			return nil, fmt.Errorf("-nats-stream %q: stream %q is listed twice", list, f.stream)
		}
		clients[key], streams[f.stream] = true, true
		follow = append(follow, f)
	}
	return follow, nil
}

// validClient is what the client of a fleet's stream may be called: its store is a
// directory of that name under -data.
var validClient = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// parseFollowed reads one element of -nats-stream; alone is true when it is the only one.
func parseFollowed(e, clientID string, alone bool) (followed, error) {
	client, stream, named := strings.Cut(e, "=")
	if !named {
		stream, client = e, strings.TrimPrefix(e, "ctwa_")
		if alone {
			client = clientID
		}
	}
	if err := cluster.CheckStream(stream); err != nil {
		return followed{}, fmt.Errorf("%w (the default is ctwa_<client-id>)", err)
	}
	switch {
	case named && !validClient.MatchString(client):
		return followed{}, fmt.Errorf("client id %q of stream %q: use 1 to 200 letters, digits, '_' or '-'", client, stream)
	case !named && !alone && !validClient.MatchString(client):
		return followed{}, fmt.Errorf("stream %q names no valid client id: write client=%s", stream, stream)
	}
	return followed{client: client, stream: stream}, nil
}

// config is what cluster.Open needs to follow stream.
func (c *clusterConfig) config(stream, name string) cluster.Config {
	return cluster.Config{URLs: c.urls, Creds: c.creds, Stream: stream, Replicas: c.replicas, Timeout: c.timeout, Name: name}
}

// clientLog is one client's log (its stream; none without -nats: the store keeps the
// log itself) and the directory of its store: -data itself, or in a fleet view (a read
// replica following several streams) -data/<client>, so that each stream keeps its own
// copy and view checkpoint.
type clientLog struct {
	followed
	dir string
}

// clientLogs are the logs this sidecar keeps, each in a store of its own.
func (c *config) clientLogs() []clientLog {
	if len(c.cluster.follow) == 0 {
		return []clientLog{{followed{client: c.clientID}, c.dataDir}}
	}
	logs := make([]clientLog, len(c.cluster.follow))
	for i, f := range c.cluster.follow {
		logs[i] = clientLog{f, c.dataDir}
		if len(c.cluster.follow) > 1 {
			logs[i].dir = filepath.Join(c.dataDir, f.client)
		}
	}
	return logs
}
