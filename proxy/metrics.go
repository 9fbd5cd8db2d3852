package proxy

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/ctwa-sidecar/ctwa-sidecar/internal/buckets"
)

// Forwarding metrics, declared once next to the code that bumps them.
var (
	// Requests by the result the sender saw: the upstream's status class, or the cause when
	// the sidecar answered itself.
	requests2xx        = metrics.NewCounter(`ctwa_sidecar_requests_total{result="2xx"}`)
	requests3xx        = metrics.NewCounter(`ctwa_sidecar_requests_total{result="3xx"}`)
	requests4xx        = metrics.NewCounter(`ctwa_sidecar_requests_total{result="4xx"}`)
	requests5xx        = metrics.NewCounter(`ctwa_sidecar_requests_total{result="5xx"}`)
	requestsBadGateway = metrics.NewCounter(`ctwa_sidecar_requests_total{result="bad_gateway"}`)
	requestsTimeout    = metrics.NewCounter(`ctwa_sidecar_requests_total{result="gateway_timeout"}`)
	requestsTooLarge   = metrics.NewCounter(`ctwa_sidecar_requests_total{result="too_large"}`)
	requestsBadRequest = metrics.NewCounter(`ctwa_sidecar_requests_total{result="bad_request"}`)
	forwardDuration    = metrics.NewPrometheusHistogramExt(`ctwa_sidecar_forward_duration_seconds`, buckets.Latency)
	upstreamTimeout    = metrics.NewCounter(`ctwa_sidecar_upstream_errors_total{reason="timeout"}`)
	upstreamRefused    = metrics.NewCounter(`ctwa_sidecar_upstream_errors_total{reason="refused"}`)
	upstreamClosed     = metrics.NewCounter(`ctwa_sidecar_upstream_errors_total{reason="closed"}`)
	upstreamTooLarge   = metrics.NewCounter(`ctwa_sidecar_upstream_errors_total{reason="response_too_large"}`)
	upstreamOther      = metrics.NewCounter(`ctwa_sidecar_upstream_errors_total{reason="other"}`)
	inFlight           = metrics.NewGauge(`ctwa_sidecar_requests_in_flight`, nil)
	requestBytes       = metrics.NewCounter(`ctwa_sidecar_request_body_bytes_total`)
	responseBytes      = metrics.NewCounter(`ctwa_sidecar_response_body_bytes_total`)
)

// countStatus counts a relayed upstream status by class.
func countStatus(code int) {
	switch {
	case code < 300:
		requests2xx.Inc()
	case code < 400:
		requests3xx.Inc()
	case code < 500:
		requests4xx.Inc()
	default:
		requests5xx.Inc()
	}
}
