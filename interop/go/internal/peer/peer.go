// Package peer holds what the go reference peers share with each other and with the js ones
// (interop/js/common.mjs): one JSON line per message on stdout, JSON log lines on stderr, a
// libp2p key file, connection logging, and exiting on SIGTERM, SIGINT or stdin EOF.
package peer

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

var outMu sync.Mutex

// Emit writes obj as one JSON line on stdout.
func Emit(obj map[string]any) {
	writeLine(os.Stdout, obj)
}

// Log writes one JSON log line {"ts": unix ms, "event": event, ...fields} on stderr.
func Log(event string, fields map[string]any) {
	line := map[string]any{"ts": time.Now().UnixMilli(), "event": event}
	for k, v := range fields {
		line[k] = v
	}
	writeLine(os.Stderr, line)
}

func writeLine(w io.Writer, obj map[string]any) {
	b, err := json.Marshal(obj)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"event": "encode_error", "error": err.Error()})
	}
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = w.Write(append(b, '\n'))
}

// Fatal logs a "fatal" line and exits 1.
func Fatal(err error) {
	Log("fatal", map[string]any{"error": err.Error()})
	os.Exit(1)
}

// Usage prints msg on stderr and exits 2, as a bad flag does.
func Usage(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(2)
}

// LibraryVersion is the go-libp2p version this binary was built with, from its build info.
func LibraryVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/libp2p/go-libp2p" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

// HostOptions are the options both peers start from: the key in keyFile (see LoadOrCreateKey),
// the identify agent (agent, or "p2pdiag-interop-go-ROLE go-libp2p@VERSION" when empty) and the
// TCP transport. It exits through Fatal when the key cannot be had.
func HostOptions(role, agent, keyFile string) []libp2p.Option {
	if agent == "" {
		agent = fmt.Sprintf("p2pdiag-interop-go-%s go-libp2p@%s", role, LibraryVersion())
	}
	key, err := LoadOrCreateKey(keyFile)
	if err != nil {
		Fatal(fmt.Errorf("key: %w", err))
	}
	return []libp2p.Option{libp2p.Identity(key), libp2p.UserAgent(agent), libp2p.Transport(tcp.NewTCPTransport)}
}

// LoadOrCreateKey reads a protobuf-encoded libp2p private key from path (the format js-, go- and
// py-libp2p marshal), creating an Ed25519 one there if the file is missing. An empty path gives a
// fresh key that is not saved.
func LoadOrCreateKey(path string) (crypto.PrivKey, error) {
	if path != "" {
		data, err := os.ReadFile(path)
		if err == nil {
			return crypto.UnmarshalPrivateKey(data)
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil || path == "" {
		return key, err
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return key, os.WriteFile(path, data, 0o600)
}

// LogConnections logs every connection's open and close on stderr, as the js peers do.
func LogConnections(n network.Network) {
	describe := func(c network.Conn) map[string]any {
		stat := c.Stat()
		return map[string]any{
			"remote_peer": c.RemotePeer().String(),
			"remote_addr": c.RemoteMultiaddr().String(),
			"direction":   stat.Direction.String(),
			"limited":     stat.Limited,
		}
	}
	n.Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			Log("connection_open", describe(c))
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			fields := describe(c)
			fields["open_ms"] = time.Since(c.Stat().Opened).Milliseconds()
			Log("connection_close", fields)
		},
	})
}

// WaitForShutdown blocks until SIGTERM, SIGINT or (unless ignoreStdin) stdin's EOF, logs a
// "shutdown" line with the reason and returns.
func WaitForShutdown(ignoreStdin bool) {
	reasons := make(chan string, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		if <-signals == syscall.SIGINT {
			reasons <- "SIGINT"
		} else {
			reasons <- "SIGTERM"
		}
	}()
	if !ignoreStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			reasons <- "stdin_eof"
		}()
	}
	Log("shutdown", map[string]any{"reason": <-reasons})
}

// CloseWithin calls closeFn and returns when it did, or after limit (a close that hangs must not
// keep the process alive).
func CloseWithin(limit time.Duration, closeFn func() error) {
	done := make(chan struct{})
	go func() {
		if err := closeFn(); err != nil {
			Log("stop_error", map[string]any{"error": err.Error()})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
		Log("stop_error", map[string]any{"error": "close did not finish in " + limit.String()})
	}
}
