// A go-libp2p peer behind a Circuit Relay v2 relay (reference peer for p2pdiag's tests): it
// reserves a slot on --relay, keeps the reservation refreshed, and answers ping and identify over
// the relayed connections it is given. go-libp2p has no private-to-private WebRTC, so it offers
// no /webrtc-signaling and has only the relayed path.
//
// stdout: one line once the reservation is in place:
//
//	{"event":"ready","implementation":"go-libp2p","version":"v0.52.0","peer_id":"12D3...",
//	 "relay_peer_id":"12D3...","webrtc":false,"addrs":["<relay>/p2p-circuit/p2p/ID", ...],
//	 "reservation":{"expire":UNIX_S,"limit_duration_s":120,"limit_data_bytes":131072,"addrs":[...]}}
//
// stderr: JSON log lines: connection_open/close, reservation (each refresh, unless --no-refresh),
// reservation_failed.
// Exits 1 with a "fatal" line if the first reservation fails or takes longer than --timeout-ms;
// exits on SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin).
package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"

	"p2pdiag-interop-go/internal/peer"
)

func main() {
	relayFlag := flag.String("relay", "", "relay multiaddr ending in /p2p/<relay peer id> (required)")
	host := flag.String("host", "127.0.0.1", "IPv4 address for --tcp-port")
	tcpPort := flag.Int("tcp-port", -1, "also listen on this TCP port (default: relayed only)")
	keyFile := flag.String("key", "", "libp2p private key file (created if missing)")
	agent := flag.String("agent", "", "identify agent version (default: p2pdiag-interop-go-peer go-libp2p@VERSION)")
	timeoutMs := flag.Int("timeout-ms", 20000, "how long the first reservation may take")
	noRefresh := flag.Bool("no-refresh", false, "never refresh the reservation (to see what the relay does at its expiry)")
	ignoreStdin := flag.Bool("ignore-stdin", false, "do not exit on stdin EOF")
	flag.Parse()

	if *relayFlag == "" {
		peer.Usage("--relay is required")
	}
	relayAddr, err := ma.NewMultiaddr(*relayFlag)
	if err != nil {
		peer.Usage("invalid --relay multiaddr: " + err.Error())
	}
	relayInfo, err := libp2ppeer.AddrInfoFromP2pAddr(relayAddr)
	if err != nil {
		peer.Usage("--relay must end with /p2p/<relay peer id>: " + err.Error())
	}
	if *timeoutMs < 1 {
		peer.Usage("--timeout-ms must be 1 or more")
	}
	// EnableRelay: the circuit transport, which answers the relay's STOP; NoListenAddrs alone turns it off
	opts := append(peer.HostOptions("peer", *agent, *keyFile), libp2p.Transport(websocket.New), libp2p.EnableRelay())
	if *tcpPort >= 0 {
		opts = append(opts, libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/tcp/%d", *host, *tcpPort)))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		peer.Fatal(err)
	}
	peer.LogConnections(h.Network())
	h.ConnManager().Protect(relayInfo.ID, "relay")

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*timeoutMs)*time.Millisecond)
	rsvp, err := reserve(ctx, h, *relayInfo)
	cancel()
	if err != nil {
		peer.Fatal(fmt.Errorf("reservation on %s: %w", relayAddr, err))
	}
	logReservation(rsvp, false)

	circuit := fmt.Sprintf("/p2p-circuit/p2p/%s", h.ID())
	addrs := []string{relayAddr.String() + circuit}
	for _, a := range rsvp.Addrs {
		if s := a.String() + circuit; s != addrs[0] {
			addrs = append(addrs, s)
		}
	}
	peer.Emit(map[string]any{
		"event":          "ready",
		"implementation": "go-libp2p",
		"version":        peer.LibraryVersion(),
		"peer_id":        h.ID().String(),
		"relay_peer_id":  relayInfo.ID.String(),
		"webrtc":         false,
		"addrs":          addrs,
		"reservation":    describe(rsvp),
	})

	stop, stopped := context.WithCancel(context.Background())
	if !*noRefresh {
		go keepReserved(stop, h, *relayInfo, rsvp.Expiration)
	}
	peer.WaitForShutdown(*ignoreStdin)
	stopped()
	peer.CloseWithin(3*time.Second, h.Close)
}

func reserve(ctx context.Context, h host.Host, relay libp2ppeer.AddrInfo) (*client.Reservation, error) {
	if err := h.Connect(ctx, relay); err != nil {
		return nil, err
	}
	return client.Reserve(ctx, h, relay)
}

// keepReserved refreshes the reservation when half of its lifetime is left (reconnecting to the
// relay if needed), and retries each second after a failure.
func keepReserved(ctx context.Context, h host.Host, relay libp2ppeer.AddrInfo, expire time.Time) {
	wait := time.Until(expire) / 2
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, time.Second)):
		}
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		rsvp, err := reserve(attempt, h, relay)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				peer.Log("reservation_failed", map[string]any{"error": err.Error()})
			}
			wait = time.Second
			continue
		}
		logReservation(rsvp, true)
		wait = time.Until(rsvp.Expiration) / 2
	}
}

func describe(r *client.Reservation) map[string]any {
	addrs := []string{}
	for _, a := range r.Addrs {
		addrs = append(addrs, a.String())
	}
	return map[string]any{
		"expire":           r.Expiration.Unix(),
		"limit_duration_s": r.LimitDuration.Seconds(),
		"limit_data_bytes": r.LimitData,
		"addrs":            addrs,
	}
}

func logReservation(r *client.Reservation, refresh bool) {
	fields := describe(r)
	fields["refresh"] = refresh
	peer.Log("reservation", fields)
}
