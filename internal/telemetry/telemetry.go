// Package telemetry serves trailwatch's own health: Prometheus metrics on
// /metrics, liveness on /healthz and readiness on /readyz, optionally behind
// basic auth and TLS. It never serves pipeline data.
package telemetry

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailwatch/trailwatch/internal/config"
)

// Config is the `http` section: the telemetry listener.
type Config struct {
	// Listen is the address to serve on; empty disables the listener.
	Listen string `koanf:"listen"`
	// Username and Password, when set, require HTTP basic auth.
	Username     string        `koanf:"username"`
	Password     config.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
	// CertFile and KeyFile, when set, serve HTTPS.
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// Validate reports every problem in the section, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen: %w", err))
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file, key_file: set both or neither"))
	}
	pw, err := config.ResolveSecret("password", c.Password, c.PasswordFile)
	if err != nil {
		errs = append(errs, err)
	}
	if (c.Username == "") != (pw == "") {
		errs = append(errs, errors.New("username, password: set both or neither"))
	}
	return errors.Join(errs...)
}

// Server is the telemetry HTTP server.
type Server struct {
	cfg   Config
	reg   *prometheus.Registry
	ready atomic.Bool
	log   *slog.Logger
	srv   *http.Server
	ln    net.Listener
}

// New returns a server with a fresh registry holding Go and process metrics.
func New(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Server{cfg: cfg, reg: reg, log: log}
}

// Registry is where components register their metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// SetReady flips /readyz between 200 and 503.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Handler returns the mux serving /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	pw, _ := config.ResolveSecret("password", s.cfg.Password, s.cfg.PasswordFile)
	if s.cfg.Username == "" {
		return mux
	}
	user, pass := []byte(s.cfg.Username), []byte(pw.Value())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), user) != 1 || subtle.ConstantTimeCompare([]byte(p), pass) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="trailwatch"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Start binds the listener; serving runs in the background until Close.
func (s *Server) Start() error {
	if s.cfg.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		var err error
		if s.cfg.CertFile != "" {
			err = s.srv.ServeTLS(ln, s.cfg.CertFile, s.cfg.KeyFile)
		} else {
			err = s.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("telemetry server stopped", "err", err)
		}
	}()
	s.log.Info("telemetry listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address, or "" when not listening.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the server within ctx.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}
