package kibana

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
)

// Config says where Kibana is and how to authenticate. The same URL builds
// the Discover links of alerts (DiscoverURL).
type Config struct {
	// URL is Kibana's base URL ("https://kibana.example:5601", with the
	// server.basePath if Kibana has one). Required to import.
	URL string `koanf:"url"`
	// Space is the Kibana space the objects go to; empty or "default"
	// means the default space.
	Space string `koanf:"space"`
	// Username and Password enable basic auth.
	Username     string        `koanf:"username"`
	Password     config.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
	// APIKey is a base64 Elasticsearch API key ("ApiKey" auth); it wins
	// over basic auth.
	APIKey     config.Secret `koanf:"api_key"`
	APIKeyFile string        `koanf:"api_key_file"`
	// CAFile is a PEM bundle of certificate authorities to trust.
	CAFile string `koanf:"ca_file"`
	// Timeout bounds the import request. Default 60s.
	Timeout time.Duration `koanf:"timeout"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{Timeout: 60 * time.Second} }

var spaceID = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Validate reports every problem, each naming its key. An empty URL is
// valid (Kibana not configured); Import refuses it.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("url: %q is not an http(s) URL", c.URL))
		} else if u.User != nil {
			errs = append(errs, errors.New("url: must not hold credentials (use username/password or api_key)"))
		}
	}
	if c.Space != "" && !spaceID.MatchString(c.Space) {
		errs = append(errs, fmt.Errorf("space: %q is not a space id (lowercase letters, digits, _ and -)", c.Space))
	}
	if c.Password.IsSet() && c.PasswordFile != "" {
		errs = append(errs, errors.New("password: set either password or password_file, not both"))
	}
	if c.APIKey.IsSet() && c.APIKeyFile != "" {
		errs = append(errs, errors.New("api_key: set either api_key or api_key_file, not both"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Base returns Kibana's URL with the space prefix: Kibana serves a
// non-default space's APIs and apps under /s/<space>. It is the base of
// app links such as DiscoverURL.
func (c Config) Base() string {
	b := strings.TrimRight(c.URL, "/")
	if c.Space != "" && c.Space != "default" {
		b += "/s/" + c.Space
	}
	return b
}
