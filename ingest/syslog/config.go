package syslog

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Config configures one syslog collector instance.
type Config struct {
	// Name is the collector instance name, put in Record.Collector and in
	// every Record.Stream. Default "syslog".
	Name string `koanf:"name"`
	// UDP is the host:port to receive RFC 5426 datagrams on ("127.0.0.1:5514").
	// Empty: no UDP listener. UDP has no flow control: see the package doc.
	UDP string `koanf:"udp"`
	// TCP is the host:port of the plain TCP listener (RFC 6587). Empty: none.
	TCP string `koanf:"tcp"`
	// TLS is the host:port of the TLS listener (RFC 5425). Empty: none.
	// Requires CertFile and KeyFile.
	TLS string `koanf:"tls"`
	// CertFile is the PEM certificate chain of the TLS listener.
	CertFile string `koanf:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `koanf:"key_file"`
	// ClientCAFile is a PEM bundle of CAs. When set, the TLS listener
	// requires a client certificate signed by one of them and refuses
	// clients without one.
	ClientCAFile string `koanf:"client_ca_file"`
	// Allow lists the networks (CIDR, or a bare IP) senders may connect or
	// send from, on every listener. Empty: any. Others are refused
	// (TCP/TLS: closed on accept; UDP: the datagram is discarded), counted
	// in Stats.Denied and logged.
	Allow []string `koanf:"allow"`
	// Source names the normalizer for messages whose app name is not in
	// Sources ("nginx"). Required.
	Source string `koanf:"source"`
	// Sources maps a syslog APP-NAME (RFC 3164 tag) to the normalizer for
	// its messages ({nginx: nginx, haproxy: haproxy}). Optional.
	Sources map[string]string `koanf:"sources"`
	// MaxMessageBytes is the longest syslog message (header included)
	// kept whole. A longer one is cut to this length, with
	// Record.Truncated set and Stats.Truncated counted. Default 64 KiB.
	MaxMessageBytes int `koanf:"max_message_bytes"`
	// MaxConnections caps open TCP plus TLS connections; one more is
	// closed on accept and counted in Stats.Rejected. Default 256.
	MaxConnections int `koanf:"max_connections"`
	// IdleTimeout closes a connection that sent nothing for this long
	// between messages. Default 5m.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// ReadTimeout bounds the time to receive one whole message once its
	// first byte arrived, and the TLS handshake. It stops a slow client
	// from holding a connection slot with a message that never ends.
	// Default 30s.
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// QueueSize is the number of messages buffered between the listeners
	// and the emitter. When it is full, TCP/TLS stop reading (the sender
	// blocks) and UDP datagrams are dropped (counted). Memory is bounded
	// by QueueSize * MaxMessageBytes. Default 4096.
	QueueSize int `koanf:"queue_size"`
	// BatchLines caps the records of one Emit call. Default 1000.
	BatchLines int `koanf:"batch_lines"`
	// BatchBytes closes a batch once its record bytes reach it (it may
	// exceed it by one message). Default 1 MiB.
	BatchBytes int `koanf:"batch_bytes"`
	// FlushInterval is the longest a received message waits for its batch
	// to fill before it is emitted. Default 200ms.
	FlushInterval time.Duration `koanf:"flush_interval"`
	// ShutdownTimeout is how long, after Run's context ends, the collector
	// keeps trying to emit what it already received. Default 10s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// UDPReadBuffer sets SO_RCVBUF of the UDP socket in bytes, to absorb
	// bursts. 0 keeps the OS default (capped by net.core.rmem_max).
	UDPReadBuffer int `koanf:"udp_read_buffer"`
	// Host is put in Record.Host. Default os.Hostname().
	Host string `koanf:"host"`
}

// DefaultConfig returns a Config with every optional field at its default
// and no listener.
func DefaultConfig() Config {
	return Config{
		Name:            "syslog",
		MaxMessageBytes: 64 << 10,
		MaxConnections:  256,
		IdleTimeout:     5 * time.Minute,
		ReadTimeout:     30 * time.Second,
		QueueSize:       4096,
		BatchLines:      1000,
		BatchBytes:      1 << 20,
		FlushInterval:   200 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
	}
}

// maxMessageLimit bounds max_message_bytes: a frame is held in memory whole.
const maxMessageLimit = 16 << 20

// Validate reports every problem in cfg, each naming its key.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Name == "" {
		bad("name: required")
	} else if strings.ContainsRune(cfg.Name, '/') {
		bad("name: must not contain '/', got %q", cfg.Name)
	}
	if cfg.UDP == "" && cfg.TCP == "" && cfg.TLS == "" {
		bad("udp, tcp, tls: at least one listener address is required")
	}
	for _, l := range []struct{ key, addr string }{{"udp", cfg.UDP}, {"tcp", cfg.TCP}, {"tls", cfg.TLS}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad("%s: %w", l.key, err)
		}
	}
	if cfg.TLS != "" {
		if cfg.CertFile == "" {
			bad("cert_file: required with tls")
		}
		if cfg.KeyFile == "" {
			bad("key_file: required with tls")
		}
	} else {
		// Refuse TLS settings without a TLS listener: whoever wrote them
		// believes traffic is encrypted or authenticated.
		for _, k := range []struct{ key, v string }{{"cert_file", cfg.CertFile}, {"key_file", cfg.KeyFile}, {"client_ca_file", cfg.ClientCAFile}} {
			if k.v != "" {
				bad("%s: set but tls (the listener address) is empty", k.key)
			}
		}
	}
	if _, err := parseAllow(cfg.Allow); err != nil {
		errs = append(errs, err)
	}
	if cfg.Source == "" {
		bad("source: required")
	}
	for app, src := range cfg.Sources {
		if app == "" {
			bad("sources: empty app name")
		}
		if src == "" {
			bad("sources.%s: empty normalizer name", app)
		}
	}
	if cfg.MaxMessageBytes <= 0 || cfg.MaxMessageBytes > maxMessageLimit {
		bad("max_message_bytes: must be in 1..%d, got %d", maxMessageLimit, cfg.MaxMessageBytes)
	}
	if cfg.MaxConnections <= 0 {
		bad("max_connections: must be positive, got %d", cfg.MaxConnections)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"idle_timeout", cfg.IdleTimeout}, {"read_timeout", cfg.ReadTimeout}, {"flush_interval", cfg.FlushInterval}, {"shutdown_timeout", cfg.ShutdownTimeout}} {
		if d.v <= 0 {
			bad("%s: must be positive, got %s", d.key, d.v)
		}
	}
	if cfg.QueueSize <= 0 {
		bad("queue_size: must be positive, got %d", cfg.QueueSize)
	}
	if cfg.BatchLines <= 0 {
		bad("batch_lines: must be positive, got %d", cfg.BatchLines)
	}
	if cfg.BatchBytes <= 0 {
		bad("batch_bytes: must be positive, got %d", cfg.BatchBytes)
	}
	if cfg.UDPReadBuffer < 0 {
		bad("udp_read_buffer: must not be negative, got %d", cfg.UDPReadBuffer)
	}
	return errors.Join(errs...)
}

// parseAllow turns Config.Allow into prefixes; a bare IP is a /32 or /128.
func parseAllow(allow []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for i, s := range allow {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("allow[%d]: %q is neither a CIDR nor an IP", i, s))
			continue
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, errors.Join(errs...)
}
