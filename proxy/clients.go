package proxy

import (
	"slices"
	"strings"

	"github.com/valyala/fasthttp"
)

// knownClients are the clients whose data this API serves, sorted: one on a member, one
// per followed stream on a read replica's fleet view (SPEC §11). A path naming any other
// {client_id} is refused with their list.
type knownClients []string

// knownOf lists the keys of a map by client id.
func knownOf[V any](byClient map[string]V) knownClients {
	k := make(knownClients, 0, len(byClient))
	for id := range byClient {
		k = append(k, id)
	}
	slices.Sort(k)
	return k
}

// notRecorded says that client id is not recorded here, and which clients are.
func (k knownClients) notRecorded(id string) string {
	msg := "client " + quote(id) + " is not recorded here; this sidecar records client"
	if len(k) != 1 {
		msg += "s"
	}
	quoted := make([]string, len(k))
	for i, c := range k {
		quoted[i] = quote(c)
	}
	return msg + " " + strings.Join(quoted, ", ")
}

// refuse answers a path whose client id is not recorded here.
func (k knownClients) refuse(ctx *fasthttp.RequestCtx, id string) {
	WriteError(ctx, fasthttp.StatusNotFound, "unknown_client", k.notRecorded(id), "client_id")
}

// list answers GET /v1/clients: the clients recorded here, {"data": [{"id"}]}, which the
// dashboard offers in its client id field.
func (k knownClients) list(ctx *fasthttp.RequestCtx, _ Params) {
	rows := make([]map[string]string, len(k))
	for i, id := range k {
		rows[i] = map[string]string{"id": id}
	}
	WriteJSON(ctx, fasthttp.StatusOK, wholePage(rows))
}
