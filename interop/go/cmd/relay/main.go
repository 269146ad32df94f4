// A go-libp2p Circuit Relay v2 relay (reference peer for p2pdiag's tests): go-libp2p's own relay
// service with its resources from flags, whose defaults are go-libp2p's.
//
// stdout: one line once listening:
//
//	{"event":"ready","implementation":"go-libp2p","version":"v0.52.0","peer_id":"12D3...",
//	 "addrs":["/ip4/127.0.0.1/tcp/N/p2p/12D3...","/ip4/127.0.0.1/tcp/M/ws/p2p/12D3..."],
//	 "limits":{"duration_ms":120000,"data_bytes":131072},"reservation_ttl_ms":3600000,...}
//
// stderr: JSON log lines: connection_open/close, and the relay service's own counts as its
// metrics hooks give them (reservation, reservation_closed, circuit_request, circuit_open,
// circuit_close), which carry no peer ids.
// Exits on SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin).
//
// go-libp2p writes Limit.duration in whole seconds (the duration divided by a second, so
// --duration-ms 1500 is announced as 1 and enforced as 1.5 s), counts the data limit in each
// direction alone, resets both streams at the duration and half-closes a direction at its data
// limit (see the report of issue 14 for what was measured).
package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"

	"p2pdiag-interop-go/internal/peer"
)

func main() {
	def := relay.DefaultResources()
	host := flag.String("host", "127.0.0.1", "IPv4 address to listen on")
	tcpPort := flag.Int("tcp-port", 0, "TCP port (0: any)")
	wsPort := flag.Int("ws-port", 0, "WebSocket port (0: any)")
	noWS := flag.Bool("no-ws", false, "no WebSocket listener")
	durationMs := flag.Int64("duration-ms", def.Limit.Duration.Milliseconds(), "circuit duration limit in ms")
	dataBytes := flag.Int64("data-bytes", def.Limit.Data, "circuit data limit in bytes (go-libp2p: each direction)")
	noLimit := flag.Bool("no-limit", false, "relay circuits without limits (go-libp2p's WithInfiniteLimits)")
	ttlMs := flag.Int64("reservation-ttl-ms", def.ReservationTTL.Milliseconds(), "reservation lifetime in ms")
	maxRsvp := flag.Int("max-reservations", def.MaxReservations, "reservation slots")
	maxCircuits := flag.Int("max-circuits", def.MaxCircuits, "open circuits per peer")
	perIP := flag.Int("max-reservations-per-ip", def.MaxReservationsPerIP, "reservations per IP address")
	perASN := flag.Int("max-reservations-per-asn", def.MaxReservationsPerASN, "reservations per ASN (IPv6 only)")
	bufferSize := flag.Int("buffer-size", def.BufferSize, "relay copy buffer size in bytes")
	rsvpAddrs := flag.String("reservation-addrs", "public",
		"addresses put in reservations: public (go-libp2p's default: none on loopback) or all")
	keyFile := flag.String("key", "", "libp2p private key file (created if missing)")
	agent := flag.String("agent", "", "identify agent version (default: p2pdiag-interop-go-relay go-libp2p@VERSION)")
	ignoreStdin := flag.Bool("ignore-stdin", false, "do not exit on stdin EOF")
	flag.Parse()

	for name, v := range map[string]int64{"duration-ms": *durationMs, "data-bytes": *dataBytes,
		"max-reservations": int64(*maxRsvp), "max-circuits": int64(*maxCircuits),
		"max-reservations-per-ip": int64(*perIP), "max-reservations-per-asn": int64(*perASN)} {
		if v < 0 {
			peer.Usage(fmt.Sprintf("--%s must be 0 or more", name))
		}
	}
	if *ttlMs < 1 || *bufferSize < 1 {
		peer.Usage("--reservation-ttl-ms and --buffer-size must be 1 or more")
	}
	if *rsvpAddrs != "public" && *rsvpAddrs != "all" {
		peer.Usage("--reservation-addrs must be public or all")
	}
	opts := peer.HostOptions("relay", *agent, *keyFile)
	listen := []string{fmt.Sprintf("/ip4/%s/tcp/%d", *host, *tcpPort)}
	if !*noWS {
		listen = append(listen, fmt.Sprintf("/ip4/%s/tcp/%d/ws", *host, *wsPort))
		opts = append(opts, libp2p.Transport(websocket.New))
	}
	h, err := libp2p.New(append(opts, libp2p.ListenAddrStrings(listen...))...)
	if err != nil {
		peer.Fatal(err)
	}
	peer.LogConnections(h.Network())

	res := def
	res.Limit = &relay.RelayLimit{Duration: time.Duration(*durationMs) * time.Millisecond, Data: *dataBytes}
	if *noLimit {
		res.Limit = nil
	}
	res.ReservationTTL = time.Duration(*ttlMs) * time.Millisecond
	res.MaxReservations = *maxRsvp
	res.MaxCircuits = *maxCircuits
	res.MaxReservationsPerIP = *perIP
	res.MaxReservationsPerASN = *perASN
	res.BufferSize = *bufferSize
	relayOpts := []relay.Option{relay.WithResources(res), relay.WithMetricsTracer(&tracer{})}
	if *rsvpAddrs == "all" {
		relayOpts = append(relayOpts, relay.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
	}
	service, err := relay.New(h, relayOpts...)
	if err != nil {
		peer.Fatal(err)
	}

	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, fmt.Sprintf("%s/p2p/%s", a, h.ID()))
	}
	var limits any
	if res.Limit != nil {
		limits = map[string]any{"duration_ms": res.Limit.Duration.Milliseconds(), "data_bytes": res.Limit.Data}
	}
	peer.Emit(map[string]any{
		"event":                    "ready",
		"implementation":           "go-libp2p",
		"version":                  peer.LibraryVersion(),
		"peer_id":                  h.ID().String(),
		"addrs":                    addrs,
		"limits":                   limits,
		"reservation_ttl_ms":       res.ReservationTTL.Milliseconds(),
		"max_reservations":         res.MaxReservations,
		"max_circuits":             res.MaxCircuits,
		"max_reservations_per_ip":  res.MaxReservationsPerIP,
		"max_reservations_per_asn": res.MaxReservationsPerASN,
		"buffer_size":              res.BufferSize,
		"reservation_addrs":        *rsvpAddrs,
	})

	peer.WaitForShutdown(*ignoreStdin)
	peer.CloseWithin(3*time.Second, func() error {
		_ = service.Close()
		return h.Close()
	})
}

// tracer turns the relay service's metrics hooks into log lines: the only events go-libp2p's relay
// gives out (they name no peer; connection_open/close do).
type tracer struct{}

func (tracer) RelayStatus(enabled bool) {
	peer.Log("relay_status", map[string]any{"enabled": enabled})
}

func (tracer) ConnectionOpened() { peer.Log("circuit_open", nil) }

func (tracer) ConnectionClosed(d time.Duration) {
	peer.Log("circuit_close", map[string]any{"duration_ms": d.Milliseconds()})
}

func (tracer) ConnectionRequestHandled(status pbv2.Status) {
	peer.Log("circuit_request", map[string]any{"status": status.String()})
}

func (tracer) ReservationAllowed(isRenewal bool) {
	peer.Log("reservation", map[string]any{"refresh": isRenewal})
}

func (tracer) ReservationClosed(count int) {
	if count > 0 {
		peer.Log("reservation_closed", map[string]any{"count": count})
	}
}

func (tracer) ReservationRequestHandled(status pbv2.Status) {
	peer.Log("reservation_request", map[string]any{"status": status.String()})
}

func (tracer) BytesTransferred(int) {}

var _ relay.MetricsTracer = tracer{}
