package telemetry

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	return s
}

func TestHealthReadyMetrics(t *testing.T) {
	s := start(t, Config{})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_test_things_total", Help: "x"})
	s.Registry().MustRegister(c)
	c.Add(3)
	base := "http://" + s.Addr()
	if code, _ := get(t, base+"/healthz", "", ""); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get(t, base+"/readyz", "", ""); code != 503 {
		t.Errorf("/readyz before ready: %d, want 503", code)
	}
	s.SetReady(true)
	if code, _ := get(t, base+"/readyz", "", ""); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
	code, body := get(t, base+"/metrics", "", "")
	if code != 200 || !strings.Contains(body, "trailwatch_test_things_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics %d lacks the registered series", code)
	}
}

func TestBasicAuthRequired(t *testing.T) {
	s := start(t, Config{Username: "ops", Password: "pw"})
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"ops", "nope", 401}, {"other", "pw", 401}, {"ops", "pw", 200}} {
		if code, _ := get(t, base+"/metrics", tc.user, tc.pass); code != tc.want {
			t.Errorf("%s/%s: %d, want %d", tc.user, tc.pass, code, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	err := (&Config{Listen: "nohostport", Username: "u", CertFile: "c"}).Validate()
	for _, want := range []string{"listen", "cert_file", "password"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
